"""Benchmark: what the hub's gate costs per update as one record's history grows.

Run: ``.venv/bin/python bench/gate_history.py [--edits 10000] [--samples 60]``.

One person record on the hub (PostgreSQL: a database of its own on the ``DATABASE_URL`` server,
dropped at the end, or a private one from `pgserver`) is
edited as a broker would: every other edit rewrites one word of its notes (about 200
characters, so the record stays the same size while its history grows), the others its city;
each edit is pushed alone and committed through the hub's group committer. The time of the gate
alone (strict checks, the sandbox round trip, the judgment) is measured per update at 100 edits
of history and again at ``--edits``, three ways in the same run: the gate that judged the last
edit (it keeps the document), two gates taking turns as two hub processes would (each catches
up with the other's commit from the log; the second gate's first edit, which loads the
document it last kept long ago, is timed apart), and a gate that keeps nothing (it loads the stored
state every time, as the hub did for every update another device had changed the record in
between). Writes ``bench/results/gate_history.md`` and ``.json``. Beside the wall time (which a
busy machine stretches), the CPU time per update of the hub process in the gate and of its
sandbox workers; and the commit of each edit, timed apart (its transaction writes the
document's whole state only when a checkpoint is due).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.progress import Progress

from bench._common import create_database, drop_database, median, write_results
from core.identity import Principal, Role
from core.ids import new_id
from core.settings import SyncLimits
from hub.gate import Admitted, Gate
from hub.service import Hub
from hub.settings import HubSettings
from schema import collection
from sync.record import RecordDoc

LOAD = "second gate's one load (one edit)"
PATHS = ("kept", LOAD, "two gates", "nothing kept")


class Bench:
    """One record, one writer, the hub's gate(s) and committer."""

    def __init__(self, hub: Hub, tenant: str) -> None:
        self.hub = hub
        self.tenant = tenant
        self.director = Principal(tenant, f"{tenant}-director", Role.SALES_DIRECTOR)
        self.doc = RecordDoc(collection("people"), new_id(), client_id=4242)
        self.edits = 0
        self.rng = random.Random(7)
        self.other = Gate(hub.store, hub.sandbox, hub.limits, hot_documents=16)
        self.cold = Gate(hub.store, hub.sandbox, hub.limits, hot_documents=0)

    async def push(self, gate: Gate) -> tuple[float, float, float, float]:
        """One edit through ``gate`` and the committer; the gate's wall and CPU time, then the
        commit's (s)."""
        self.edits += 1
        values: dict[str, object]
        if self.edits == 1:
            values = {"tenant_id": self.tenant, "full_name": "History",
                      "notes": " ".join(f"word{n}" for n in range(40))}
        elif self.edits % 2:
            words = str(self.doc.content()["notes"]).split(" ")
            words[self.rng.randrange(len(words))] = f"w{self.edits}"
            values = {"notes": " ".join(words)}
        else:
            values = {"city": f"City {self.edits}"}
        update = self.doc.write(values)
        start, cpu = time.perf_counter(), time.process_time()
        (verdict,) = await gate.admit_batch(self.director, {4242},
                                            [(self.doc.guid, update, f"u{self.edits}")])
        took = (time.perf_counter() - start, time.process_time() - cpu)
        assert isinstance(verdict, Admitted), verdict
        start, cpu = time.perf_counter(), time.process_time()
        results = await self.hub.committer.commit(self.tenant, [verdict.change],
                                                  user_id=self.director.user_id,
                                                  device_id=None, principal=self.director)
        if gate is not self.hub.gate:  # another hub process's committer tells its own gate
            gate.settle([verdict.change], results)
        return (*took, time.perf_counter() - start, time.process_time() - cpu)

    def _worker_cpu(self) -> float:
        """CPU seconds the sandbox workers used so far."""
        total = 0
        for pid in self.hub.sandbox.pids:
            if pid is not None:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    async def sample(self, samples: int) -> dict[str, dict[str, float]]:
        """Per path: µs per update, wall (median of ``samples`` edits) and CPU (mean)."""
        out: dict[str, dict[str, float]] = {}
        for path, gates, count in (("kept", (self.hub.gate,), samples),
                                   ("two gates", (self.hub.gate, self.other), samples),
                                   ("nothing kept", (self.cold,), max(5, samples // 4))):
            if path == "two gates":  # the second gate loads the document once, timed apart
                workers = self._worker_cpu()
                wall, cpu, commit_wall, commit_cpu = await self.push(self.other)
                out[LOAD] = {"wall": wall * 1e6, "cpu": cpu * 1e6,
                             "sandbox_cpu": (self._worker_cpu() - workers) * 1e6,
                             "commit_wall": commit_wall * 1e6, "commit_cpu": commit_cpu * 1e6}
            workers = self._worker_cpu()
            runs = [await self.push(gates[n % len(gates)]) for n in range(count)]
            out[path] = {"wall": median([r[0] for r in runs]) * 1e6,
                         "cpu": sum(r[1] for r in runs) / count * 1e6,
                         "sandbox_cpu": (self._worker_cpu() - workers) / count * 1e6,
                         "commit_wall": median([r[2] for r in runs]) * 1e6,
                         "commit_cpu": sum(r[3] for r in runs) / count * 1e6}
        return out


async def run(edits: int, samples: int, database_url: str, console: Console) -> dict[str, object]:
    tenant = f"gate-{new_id()}"
    async with Hub(HubSettings(database_url=database_url, sandbox_workers=2),
                   SyncLimits()) as hub:
        await hub.accounts.ensure_tenant(tenant, "Gate history bench")
        bench = Bench(hub, tenant)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"editing one record {edits:,} times", total=edits)
            while bench.edits < 100:
                await bench.push(hub.gate)
            early_at = bench.edits
            early = await bench.sample(samples)
            progress.update(task, completed=bench.edits)
            while bench.edits < edits:
                await bench.push(hub.gate)
                progress.update(task, completed=bench.edits)
            late_at = bench.edits
            late = await bench.sample(samples)
        state = await hub.store.document(tenant, bench.doc.guid)
        assert state is not None
        return {"early_edits": early_at, "late_edits": late_at, "early_us": early,
                "late_us": late, "state_bytes": len(state.state),
                "ratios": {path: {k: late[path][k] / early[path][k]
                                  for k in ("wall", "cpu", "commit_wall", "commit_cpu")}
                           for path in PATHS},
                "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=10_000, help="history at the second point")
    parser.add_argument("--samples", type=int, default=60, help="edits measured per path")
    args = parser.parse_args()
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="velocity-gate-bench-"))
    embedded = folder / "pg"
    from hub.database import start_embedded_postgres, stop_embedded_postgres

    server = os.environ.get("DATABASE_URL")
    url = (asyncio.run(create_database(server, "velocity_bench_gate")) if server
           else start_embedded_postgres(embedded))
    try:
        figures = asyncio.run(run(args.edits, args.samples, url, console))
    finally:
        if server:
            asyncio.run(drop_database(server, url))
        else:
            stop_embedded_postgres(embedded)
        shutil.rmtree(folder, ignore_errors=True)
    early, late = figures["early_us"], figures["late_us"]
    ratios = figures["ratios"]
    assert isinstance(early, dict) and isinstance(late, dict) and isinstance(ratios, dict)
    md = "\n".join([
        f"Gate time per update (µs, median of {args.samples}) for edits of one record (a word "
        "of its notes or its city), "
        f"at {figures['early_edits']} and {figures['late_edits']:,} edits of history (stored "
        f"state {figures['state_bytes']:,} B at the end; load average "
        f"{figures['load']:.1f} on this machine):", "",
        f"| gate | wall at {figures['early_edits']} | wall at {figures['late_edits']:,} | ratio | "
        f"hub CPU at {figures['early_edits']} | at {figures['late_edits']:,} | ratio | sandbox "
        "CPU (10 ms ticks) at first / last |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {path} | {early[path]['wall']:,.0f} | {late[path]['wall']:,.0f} | "
          f"{ratios[path]['wall']:.2f}× | {early[path]['cpu']:,.0f} | {late[path]['cpu']:,.0f} | "
          f"{ratios[path]['cpu']:.2f}× | {early[path]['sandbox_cpu']:,.0f} / "
          f"{late[path]['sandbox_cpu']:,.0f} |" for path in PATHS],
        "",
        "The commit of the same edits (the group committer's transaction: log row, projection "
        "row, and the document's state when a checkpoint is due), µs per update:",
        "",
        f"| gate | commit wall at {figures['early_edits']} | at {figures['late_edits']:,} | "
        f"ratio | commit CPU at {figures['early_edits']} | at {figures['late_edits']:,} | "
        "ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {path} | {early[path]['commit_wall']:,.0f} | {late[path]['commit_wall']:,.0f} | "
          f"{ratios[path]['commit_wall']:.2f}× | {early[path]['commit_cpu']:,.0f} | "
          f"{late[path]['commit_cpu']:,.0f} | {ratios[path]['commit_cpu']:.2f}× |"
          for path in ("kept", "two gates")],
    ])
    console.print(md)
    console.print(f"written to {write_results('gate_history', figures, md)}")


if __name__ == "__main__":
    main()
