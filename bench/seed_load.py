"""Benchmark of loading the synthetic CRM into a hub: records/s into PostgreSQL.

Compares, in one run, the bulk create path (`hub.store.create_many`, what `velocity seed` uses)
with the per-record transactional path (`LocalWriter.write_many`) on the same records (copied
under new ids; unit holds, whose id is their unit's, are not). On a database of its own on the
``DATABASE_URL`` server, dropped at the end, or a private one from `pgserver` when it is unset.
Run: ``.venv/bin/python bench/seed_load.py [--size medium]``. Writes bench/results/seed_load.*.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bench._common import database_of_its_own, write_results
from core.identity import Principal, Role
from hub.service import Hub
from hub.settings import HubSettings
from schema.inventory import HOLDS
from seeds.generator import Dataset, generate
from seeds.loader import load


async def run(size: str, compare: int, console: Console) -> dict[str, float]:
    data = generate("bench", size)
    folder = Path(tempfile.mkdtemp(prefix="velocity-seed-bench-"))
    try:
        async with database_of_its_own("velocity_bench_seed", folder / "pg") as url:
            settings = HubSettings(data_dir=folder, sandbox_workers=1, database_url=url)
            return await _measure(settings, data, compare, console)
    finally:  # the data go with the benchmark
        shutil.rmtree(folder, ignore_errors=True)


async def _measure(settings: HubSettings, data: Dataset, compare: int, console: Console
                   ) -> dict[str, float]:
    async with Hub(settings) as hub:
        with Progress(TextColumn("loading"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:
            task = bar.add_task("load", total=len(data.records))
            start = time.perf_counter()
            await load(hub, data, progress=lambda n: bar.advance(task, n))
            bulk = time.perf_counter() - start
        principal = Principal("bench", "bench-admin", Role.ADMIN)
        # copies under new ids; a unit hold's id is its unit's, so holds are not copied
        sample = [(c, f"x-{rid}", v) for c, rid, v in data.records if c != HOLDS][:compare]
        start = time.perf_counter()
        for i in range(0, len(sample), 500):
            await hub.writer.write_many(principal, sample[i:i + 500], create=True)
        per_record = time.perf_counter() - start
    return {"records": len(data.records), "bulk_s": bulk,
            "bulk_records_per_s": len(data.records) / bulk,
            "per_record_sample": len(sample),
            "per_record_records_per_s": len(sample) / per_record}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--compare", type=int, default=5000,
                        help="records loaded through the per-record path for the ratio")
    args = parser.parse_args()
    console = Console()
    r = asyncio.run(run(args.size, args.compare, console))
    ratio = r["bulk_records_per_s"] / r["per_record_records_per_s"]
    md = "\n".join([
        "| path | records | records/s |", "| --- | --- | --- |",
        f"| bulk create (`velocity seed`) | {r['records']:,} | {r['bulk_records_per_s']:,.0f} |",
        f"| per-record transactions | {r['per_record_sample']:,} | "
        f"{r['per_record_records_per_s']:,.0f} |",
        f"\nBulk path: {ratio:.1f}× the per-record path; `{args.size}` loaded in "
        f"{r['bulk_s']:.1f} s.",
    ])
    console.print(md)
    console.print(f"written to {write_results('seed_load', {'size': args.size, **r}, md)}")


if __name__ == "__main__":
    main()
