"""Benchmark of the untrusted-update gate: strict validator throughput, and the cost of the
isolated first apply beside applying in-process, in one run.

Run: ``.venv/bin/python bench/validator.py [--updates N]``. Writes bench/results/validator.*.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench._common import timed, write_results
from core.settings import SyncLimits
from schema import collection
from sync.record import TRUSTED_LIMITS, RecordDoc
from sync.sandbox import Job, SandboxPool
from sync.ycheck import OriginIndex, RootKind, inspect
from sync.yupdate import decode_state_vector

PEOPLE = collection("people")


def _workload(n: int) -> list[tuple[bytes, bytes, dict[int, int]]]:
    """(state before, update, held state vector) for n realistic person edits."""
    out = []
    for i in range(n):
        doc = RecordDoc(PEOPLE, f"p{i}", client_id=7)
        doc.write({"tenant_id": "t1", "full_name": f"Person {i}", "city": "Mumbai",
                   "notes": "Prefers a sea view."})
        state = doc.encode_state()
        held = decode_state_vector(doc.state_vector(), TRUSTED_LIMITS)
        update = doc.write({"city": "Dubai", "segment": "whale",
                            "notes": f"Prefers a sea view. Budget {i % 30} Cr."})
        out.append((state, update, held))
    return out


async def _sandbox(work: list[tuple[bytes, bytes, dict[int, int]]], batch: int) -> float:
    async with SandboxPool(size=2) as pool:
        jobs = [Job("people", f"p{i}", s, (u,)) for i, (s, u, _) in enumerate(work)]
        loop = asyncio.get_running_loop()
        start = loop.time()
        if batch == 1:
            for job in jobs:
                await pool.apply_many([job])
        else:
            await asyncio.gather(*(pool.apply_many(jobs[i:i + batch])
                                   for i in range(0, len(jobs), batch)))
        return loop.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=2000)
    args = parser.parse_args()
    console = Console()
    limits = SyncLimits()
    with Progress(console=console) as bar:
        task = bar.add_task("benchmarking", total=5)
        work = _workload(args.updates)
        bar.advance(task)
        roots = {"fields": RootKind.MAP, "notes": RootKind.TEXT, "tags": RootKind.ARRAY}
        t_validate, _ = timed(lambda: [inspect(
            u, limits=limits, roots=roots, held=h, bound_clients={7},
            index=OriginIndex.from_state(s, TRUSTED_LIMITS)).effects for s, u, h in work])
        kept = [OriginIndex.from_state(s, TRUSTED_LIMITS) for s, _, _ in work]
        t_validate_kept, _ = timed(lambda: [inspect(
            u, limits=limits, roots=roots, held=h, bound_clients={7}, index=index).effects
            for (_, u, h), index in zip(work, kept, strict=True)])
        bar.advance(task)

        def in_process() -> None:
            for i, (s, u, _) in enumerate(work):
                doc = RecordDoc(PEOPLE, f"p{i}", state=s)
                doc.apply(u)
                doc.encode_state()
                doc.content()

        t_inproc, _ = timed(in_process)
        bar.advance(task)
        t_iso_1 = asyncio.run(_sandbox(work, 1))
        bar.advance(task)
        t_iso_50 = asyncio.run(_sandbox(work, 50))
        bar.advance(task)
    n = args.updates
    total_bytes = sum(len(u) for _, u, _ in work)
    rows = [
        ("strict validator (origin index + decode + checks + effects)", t_validate),
        ("strict validator on a kept origin index (the gate, a document it judged before)",
         t_validate_kept),
        ("apply in-process (RecordDoc)", t_inproc),
        ("isolated apply, one update per round trip", t_iso_1),
        ("isolated apply, batches of 50 (2 workers)", t_iso_50),
    ]
    table = Table(title=f"untrusted-update gate, {n:,} person edits "
                        f"({total_bytes / n:.0f} B each)")
    for col in ("step", "µs / update", "updates/s", "vs in-process"):
        table.add_column(col)
    lines = ["| step | µs / update | updates/s | vs in-process |", "| --- | --- | --- | --- |"]
    figures = {}
    for name, t in rows:
        row = (name, f"{t / n * 1e6:.0f}", f"{n / t:,.0f}", f"{t / t_inproc:.2f}×")
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
        figures[name] = {"seconds": t, "per_update_us": t / n * 1e6}
    mbps = total_bytes / t_validate / 1e6
    lines.append(f"\nValidator throughput: {n / t_validate:,.0f} updates/s, {mbps:.2f} MB/s.")
    console.print(table)
    console.print(lines[-1])
    path = write_results("validator", {"updates": n, "results": figures,
                                       "validator_mb_per_s": mbps}, "\n".join(lines))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
