"""Benchmark of the sync core: our record layer vs raw pycrdt vs loro, 10,000 records × 10 fields;
then list fields: set and ordered-list operations, ours vs the same gestures on raw pycrdt.

Run: ``.venv/bin/python bench/sync_core.py [--records N] [--list-ops N]``. Writes
bench/results/sync_core.*.
"""

from __future__ import annotations

import argparse
import random
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import loro
import pycrdt as Y
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench._common import timed, write_results
from schema import collection
from sync.record import RecordDoc

PEOPLE = collection("people")
CANVAS = collection("canvas_pages")
TAGS = [f"tag{i}" for i in range(40)]


def _values(i: int) -> dict[str, object]:
    return {
        "tenant_id": "t1", "owner_id": f"u{i % 50}", "team_id": f"team-{i % 3}",
        "full_name": f"Person {i}", "primary_phone": f"+91 98{i:08d}",
        "email": f"person{i}@mail.example", "city": ["Mumbai", "Dubai", "Pune"][i % 3],
        "country": "India", "segment": "hni", "source": "referral",
    }


def ours(n: int, *, in_order: bool = True) -> dict[str, float]:
    """Validated writes; apply as the edge and hub do (``in_order``: log order, checked
    natively) or through the decoding causal buffer (any order)."""
    docs: list[RecordDoc] = []
    t_create, _updates = timed(lambda: [
        (docs.append(d := RecordDoc(PEOPLE, f"p{i}", client_id=1)), d.write(_values(i)))[1]
        for i in range(n)])
    t_encode, encoded = timed(lambda: [d.encode_state() for d in docs])
    t_apply, _ = timed(lambda: [
        RecordDoc(PEOPLE, f"p{i}", client_id=2).apply(u, in_order=in_order)
        for i, u in enumerate(encoded)])
    return {"create_s": t_create, "encode_s": t_encode, "apply_s": t_apply,
            "bytes": sum(len(u) for u in encoded)}


def raw_pycrdt(n: int) -> dict[str, float]:
    docs: list[Y.Doc] = []

    def create() -> None:
        for i in range(n):
            doc: Y.Doc = Y.Doc(client_id=1)
            fields = doc.get("fields", type=Y.Map)
            with doc.transaction():
                for k, v in _values(i).items():
                    fields[k] = v
            docs.append(doc)

    t_create, _ = timed(create)
    t_encode, encoded = timed(lambda: [d.get_update() for d in docs])

    def apply() -> None:
        for u in encoded:
            doc: Y.Doc = Y.Doc(client_id=2)
            doc.get("fields", type=Y.Map)
            doc.apply_update(u)

    t_apply, _ = timed(apply)
    return {"create_s": t_create, "encode_s": t_encode, "apply_s": t_apply,
            "bytes": sum(len(u) for u in encoded)}


def with_loro(n: int) -> dict[str, float]:
    docs: list[loro.LoroDoc] = []

    def create() -> None:
        for i in range(n):
            doc = loro.LoroDoc()
            fields = doc.get_map("fields")
            for k, v in _values(i).items():
                fields.insert(k, v)
            doc.commit()
            docs.append(doc)

    t_create, _ = timed(create)
    t_encode, encoded = timed(lambda: [d.export(loro.ExportMode.Snapshot()) for d in docs])

    def apply() -> None:
        for u in encoded:
            loro.LoroDoc().import_(u)

    t_apply, _ = timed(apply)
    return {"create_s": t_create, "encode_s": t_encode, "apply_s": t_apply,
            "bytes": sum(len(u) for u in encoded)}


def _set_ops(n: int) -> list[tuple[str, str]]:
    """n adds and removals of tags: each tag is added when absent, removed when present."""
    rng, held, ops = random.Random(1), set(), []
    for _ in range(n):
        tag = rng.choice(TAGS)
        ops.append(("remove" if tag in held else "add", tag))
        held ^= {tag}
    return ops


def _list_ops(n: int) -> list[tuple[str, int, int]]:
    """n canvas gestures on a page of about 30 components: (kind, index, other index)."""
    rng, size, ops = random.Random(2), 0, []
    for _ in range(n):
        kind = ("insert" if size < 20 else rng.choice(["insert", "move", "edit", "remove"])
                if size < 40 else rng.choice(["move", "edit", "remove"]))
        at = rng.randint(0, size - (kind != "insert"))
        ops.append((kind, at, rng.randint(0, max(size - 2, 0))))
        size += {"insert": 1, "remove": -1}.get(kind, 0)
    return ops


def sets_ours(n: int) -> tuple[float, int]:
    doc = RecordDoc(PEOPLE, "p", client_id=1)
    doc.write({"tenant_id": "t1", "full_name": "Zara Khan"})
    held: set[str] = set()

    def run() -> int:
        size = 0
        for _, tag in _set_ops(n):
            held.symmetric_difference_update({tag})
            size += len(doc.write({"tags": sorted(held)}))  # the whole value, as REST sends it
        return size
    return timed(run)


def sets_raw(n: int) -> tuple[float, int]:
    doc: Y.Doc = Y.Doc(client_id=1)
    tags = doc.get("tags", type=Y.Map)

    def run() -> int:
        size = 0
        for kind, tag in _set_ops(n):
            before = doc.get_state()
            if kind == "add":
                tags[tag] = True
            else:
                del tags[tag]
            size += len(doc.get_update(before))
        return size
    return timed(run)


def lists_ours(n: int) -> tuple[float, int]:
    doc = RecordDoc(CANVAS, "c", client_id=1)
    doc.write({"tenant_id": "t1", "title": "Tower A"})
    ids: list[str] = []

    def run() -> int:
        size = 0
        for step, (kind, i, j) in enumerate(_list_ops(n)):
            if kind == "insert":
                ids.insert(i, f"c{step}")
                update = doc.insert_element("components", i, {
                    "id": f"c{step}", "type": "kpi", "title": f"KPI {step}"})
            elif kind == "move":
                eid = ids.pop(i)
                ids.insert(j, eid)
                update = doc.move_element("components", eid, j)
            elif kind == "edit":
                update = doc.update_element("components", ids[i], {"title": f"Edited {step}"})
            else:
                update = doc.remove_element("components", ids.pop(i))
            size += len(update)
        return size
    return timed(run)


def lists_raw(n: int) -> tuple[float, int]:
    """The same gestures on a root Array of plain maps (a move is a delete and an insert)."""
    doc: Y.Doc = Y.Doc(client_id=1)
    array = doc.get("components", type=Y.Array)

    def run() -> int:
        size = 0
        for step, (kind, i, j) in enumerate(_list_ops(n)):
            before = doc.get_state()
            with doc.transaction():
                if kind == "insert":
                    array.insert(i, {"id": f"c{step}", "type": "kpi", "title": f"KPI {step}"})
                elif kind == "move":
                    element = array[i]
                    del array[i]
                    array.insert(j, element)
                elif kind == "edit":
                    element = {**array[i], "title": f"Edited {step}"}
                    del array[i]
                    array.insert(i, element)
                else:
                    del array[i]
            size += len(doc.get_update(before))
        return size
    return timed(run)


def list_rows(n: int, repeat: int, progress: Progress) -> tuple[dict[str, dict[str, float]],
                                                                list[str]]:
    """Best of ``repeat``: ops/s and bytes per op of each list runner."""
    set_raw = "set, raw pycrdt Map (one key per member)"
    list_raw = "ordered list, raw pycrdt Array (move = delete + insert)"
    runners = {"set, velocity (whole value written)": (sets_ours, set_raw),
               set_raw: (sets_raw, set_raw),
               "ordered list, velocity (element operations)": (lists_ours, list_raw),
               list_raw: (lists_raw, list_raw)}
    task = progress.add_task("list fields", total=len(runners) * repeat)
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for name, (fn, _) in runners.items():
            seconds, size = fn(n)
            if name not in best or seconds < best[name]["seconds"]:
                best[name] = {"seconds": seconds, "ops_per_s": n / seconds,
                              "bytes_per_op": size / n}
            progress.advance(task)
    lines = [f"| list field, {n:,} operations | ops/s | bytes/op | time vs raw pycrdt |",
             "| --- | --- | --- | --- |"]
    for name, r in best.items():
        r["time_vs_pycrdt"] = r["seconds"] / best[runners[name][1]]["seconds"]
        lines.append(f"| {name} | {r['ops_per_s']:,.0f} | {r['bytes_per_op']:.0f} | "
                     f"{r['time_vs_pycrdt']:.2f}× |")
    return best, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="best of N interleaved rounds")
    parser.add_argument("--list-ops", type=int, default=2_000,
                        help="operations per list-field run")
    args = parser.parse_args()
    console = Console()
    runners = {"velocity (sync.record), log order": ours,
               "velocity, any order (decoding causal buffer)": partial(ours, in_order=False),
               "raw pycrdt": raw_pycrdt, "loro": with_loro}
    results: dict[str, dict[str, float]] = {}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    with Progress(console=console) as bar:
        task = bar.add_task("benchmarking", total=len(runners) * args.repeat)
        for _ in range(args.repeat):  # rounds interleave the libraries: load drifts alike
            for name, fn in runners.items():
                runs[name].append(fn(args.records))
                bar.advance(task)
        lists, list_lines = list_rows(args.list_ops, args.repeat, bar)
    for name, done in runs.items():
        results[name] = {k: min(r[k] for r in done) for k in done[0]}
    base = results["raw pycrdt"]
    table = Table(title=f"sync core, {args.records:,} records × 10 fields (best of {args.repeat})")
    for col in ("library", "create s", "encode s", "apply s", "bytes/record", "total vs pycrdt"):
        table.add_column(col)
    lines = ["| library | create s | encode s | apply s | bytes/record | total vs raw pycrdt |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        total = r["create_s"] + r["encode_s"] + r["apply_s"]
        ratio = total / (base["create_s"] + base["encode_s"] + base["apply_s"])
        row = (name, f"{r['create_s']:.3f}", f"{r['encode_s']:.3f}", f"{r['apply_s']:.3f}",
               f"{r['bytes'] / args.records:.0f}", f"{ratio:.2f}×")
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
        r["ratio_vs_pycrdt"] = ratio
    console.print(table)
    console.print("\n".join(list_lines))
    path = write_results("sync_core", {"records": args.records, "results": results,
                                       "list_ops": args.list_ops, "lists": lists},
                         "\n".join([*lines, "", *list_lines]))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
