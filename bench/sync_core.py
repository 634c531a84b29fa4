"""Benchmark of the sync core: our record layer vs raw pycrdt vs loro, 10,000 records × 10 fields.

Run: ``.venv/bin/python bench/sync_core.py [--records N]``. Writes bench/results/sync_core.*.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="best of N interleaved rounds")
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
    path = write_results("sync_core", {"records": args.records, "results": results},
                         "\n".join(lines))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
