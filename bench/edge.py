"""Benchmark of the edge agent: durable local writes, contact search, bootstrap, catch-up.

Run: ``.venv/bin/python bench/edge.py [--contacts N] [--local N] [--remote N]``.
The hub runs on a database of its own on the ``DATABASE_URL`` server (dropped at the end), or
a private one from `pgserver` when it is unset. Writes bench/results/edge.*. Targets: write
p99 < 5 ms, search p95 < 10 ms, bootstrap ≥ 5,000 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console

from bench._common import database_of_its_own, hub_in_process, percentile, write_results
from core.identity import Principal, Role
from edge_agent.crypto import Sealer
from edge_agent.device import pair
from edge_agent.replica import Replica
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import create_many
from seeds.generator import generate
from seeds.loader import load

SEARCH = ("SELECT id, full_name FROM temp.crm_people WHERE NOT deleted AND (lower(full_name) "
          "LIKE ? OR primary_phone LIKE ?) ORDER BY full_name LIMIT 50")


async def local_writes_and_search(folder: Path, contacts: int) -> dict[str, float]:
    async with Replica(folder / "r.db", Sealer(b"k" * 32), client_id=9) as replica:
        latencies = []
        for i in range(contacts):
            start = time.perf_counter()
            await replica.write("people", f"p{i}", {
                "tenant_id": "t1", "full_name": f"Person {i} Mehta",
                "primary_phone": f"+91 98{i:08d}", "city": "Mumbai"})
            latencies.append(time.perf_counter() - start)
        searches = []
        for i in range(300):
            start = time.perf_counter()
            await replica.query(SEARCH, (f"%person {i * 31 % contacts}%", f"%{i:04d}%"))
            searches.append(time.perf_counter() - start)
    return {"write_p50_ms": percentile(latencies, 0.5) * 1e3,
            "write_p99_ms": percentile(latencies, 0.99) * 1e3,
            "search_p95_ms": percentile(searches, 0.95) * 1e3, "contacts": contacts}


def _hub_process(folder: Path, remote: int, url: str | None, conn: Connection) -> None:
    """The hub in its own process, as in production (on ``url``, else a private PostgreSQL):
    seeded, it hands out a pairing code, then adds ``remote`` changes when asked, then stops
    when asked."""
    asyncio.run(_serve_hub(folder, remote, url, conn))


async def _serve_hub(folder: Path, remote: int, url: str | None, conn: Connection) -> None:
    data = generate("acme", "small")
    settings = HubSettings(data_dir=folder / "hub", port=0, sandbox_workers=2, database_url=url)
    async with HubServer(Hub(settings)) as server:
        hub = server.hub
        await load(hub, data)
        admin = Principal("acme", "acme-admin", Role.ADMIN)
        director = next(u for u in data.users if u.role is Role.SALES_DIRECTOR)
        code = await hub.accounts.issue_pairing_code(admin, director.user_id, "ipad", 600)
        wire = sum(len(state) for state in (await hub.storage.documents.states("acme")).values())
        as_json = sum(len(json.dumps(v)) for _, _, v in data.records)
        conn.send({"url": server.url, "code": code, "records": len(data.records),
                   "wire": wire, "json": as_json})
        await asyncio.to_thread(conn.recv)  # the device is bootstrapped and offline
        remote_records = [("interactions", f"00000000-0000-4000-8000-{i:012d}", {
            "tenant_id": "acme", "person_id": "p", "kind": "note",
            "occurred_at": "2026-11-25T10:00:00Z", "body": f"remote note {i}"})
            for i in range(remote)]
        for i in range(0, remote, 2000):
            await create_many(hub.writer, admin, remote_records[i:i + 2000])
        last, _ = await hub.store.high_water("acme")
        conn.send(last)
        await asyncio.to_thread(conn.recv)  # done


async def bootstrap_and_catch_up(folder: Path, local: int, remote: int) -> dict[str, float]:
    """Bootstrap a device from a hub running in another process, then catch up after
    ``local`` offline edits on the device and ``remote`` changes on the hub."""
    async with database_of_its_own("velocity_bench_edge") as url:
        return await _bootstrap_and_catch_up(folder, local, remote, url)


async def _bootstrap_and_catch_up(folder: Path, local: int, remote: int, url: str | None
                                  ) -> dict[str, float]:
    with hub_in_process(_hub_process, folder, remote, url) as ours:
        seeded = await asyncio.to_thread(ours.recv)
        device = folder / "ipad"
        await pair(device, seeded["url"], seeded["code"], "bench iPad", "bench passphrase")
        settings = EdgeSettings(data_dir=device, passphrase="bench passphrase")
        start = time.perf_counter()
        async with EdgeAgent(settings) as agent:
            assert agent.sync is not None
            await agent.sync.caught_up.wait()
            boot = time.perf_counter() - start
            records = agent.replica.document_count
        async with EdgeAgent(settings, sync=False) as offline:
            for i in range(local):
                await offline.write("tasks", None, {"title": f"Follow up {i}"})
        ours.send("add remote changes")
        last = await asyncio.to_thread(ours.recv)
        start = time.perf_counter()
        async with EdgeAgent(settings) as agent:
            assert agent.sync is not None
            while (await agent.replica.pending_count() or not agent.sync.caught_up.is_set()
                   or await agent.replica.cursor() < last):
                await asyncio.sleep(0.05)
            catch_up = time.perf_counter() - start
        ours.send("stop")
    return {"bootstrap_records": records, "bootstrap_s": boot,
            "bootstrap_records_per_s": records / boot,
            "wire_bytes_per_record": seeded["wire"] / seeded["records"],
            "json_bytes_per_record": seeded["json"] / seeded["records"],
            "catch_up_local": local, "catch_up_remote": remote, "catch_up_s": catch_up}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--local", type=int, default=5_000)
    parser.add_argument("--remote", type=int, default=20_000)
    args = parser.parse_args()
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="velocity-edge-bench-"))
    with console.status("local writes and search…"):
        a = asyncio.run(local_writes_and_search(folder, args.contacts))
    with console.status("bootstrap and offline catch-up…"):
        b = asyncio.run(bootstrap_and_catch_up(folder, args.local, args.remote))
    md = "\n".join([
        "| measure | value | target |", "| --- | --- | --- |",
        f"| durable local write p50 / p99 | {a['write_p50_ms']:.2f} / {a['write_p99_ms']:.2f} ms"
        " | p99 < 5 ms |",
        f"| contact search p95 at {a['contacts']:,} contacts | {a['search_p95_ms']:.2f} ms "
        "| < 10 ms |",
        f"| bootstrap of the small seed CRM ({b['bootstrap_records']:,} records; hub in its "
        "own process) | "
        f"{b['bootstrap_records_per_s']:,.0f} records/s | ≥ 5,000 records/s |",
        f"| bytes per record: snapshot on the wire vs the same record as JSON | "
        f"{b['wire_bytes_per_record']:.0f} B vs {b['json_bytes_per_record']:.0f} B | |",
        f"| offline catch-up, {b['catch_up_local']:,} local + {b['catch_up_remote']:,} remote "
        f"changes | {b['catch_up_s']:.1f} s to converge | |",
    ])
    console.print(md)
    console.print(f"written to {write_results('edge', {**a, **b}, md)}")


if __name__ == "__main__":
    main()
