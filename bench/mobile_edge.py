"""Benchmark of the mobile-edge routes: a broker's device offline, then back.

A junior broker's device logs calls and imports recorded calls (transcript segments and facts)
through its local API with no network; then it reconnects, and we time until the hub has
acknowledged every change and until the senior's device (online all along) holds every record;
last, reads of a lead's events on the hub and on the device. The hub runs in this process on
PostgreSQL: a database of its own on the ``DATABASE_URL`` server, dropped at the end, or a
private one from `pgserver` when it is unset.
Run: ``.venv/bin/python bench/mobile_edge.py [--events 200 --imports 20 --segments 20]``.
Writes bench/results/mobile_edge.*.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from rich.console import Console

from bench._common import database_of_its_own, median, percentile, write_results
from core.identity import Principal, Role
from edge_agent.device import pair
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings

TENANT, PASSWORD, PASSPHRASE = "bench", "bench password 1", "bench passphrase"
JUNIOR = Principal(TENANT, "bench-junior", Role.JUNIOR_BROKER, "north")
SENIOR = Principal(TENANT, "bench-senior", Role.SENIOR_BROKER, "north")


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 600) -> float:
    start = time.perf_counter()
    while not await check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the devices did not converge in time")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


async def run(folder: Path, events: int, imports: int, segments: int) -> dict[str, Any]:
    async with database_of_its_own("velocity_bench_mobile", folder / "hub" / "pg") as url:
        settings = HubSettings(data_dir=folder / "hub", port=0, sandbox_workers=2,
                               database_url=url)
        return await _measure(settings, folder, events, imports, segments)


async def _measure(settings: HubSettings, folder: Path, events: int, imports: int,
                   segments: int) -> dict[str, Any]:
    async with HubServer(Hub(settings)) as server:
        hub = server.hub
        await hub.accounts.ensure_tenant(TENANT, "Bench")
        admin = Principal(TENANT, "bench-admin", Role.ADMIN)
        for who, email in ((JUNIOR, "junior@bench.test"), (SENIOR, "senior@bench.test"),
                           (admin, "admin@bench.test")):
            await hub.accounts.create_user(TENANT, email, PASSWORD, who.role, who.user_id,
                                           team_id="north", user_id=who.user_id)
        scope = {"tenant_id": TENANT, "owner_id": JUNIOR.user_id, "team_id": "north"}
        await hub.writer.write_many(JUNIOR, [
            ("people", "p1", {**scope, "full_name": "Zara Khan"}),
            ("leads", "l1", {**scope, "person_id": "p1"})], create=True)
        devices = {}
        for who in (JUNIOR, SENIOR):
            code = await hub.accounts.issue_pairing_code(admin, who.user_id, "ipad", 600)
            await pair(folder / who.user_id, server.url, code, who.user_id, PASSPHRASE)
            devices[who.user_id] = EdgeSettings(data_dir=folder / who.user_id,
                                                passphrase=PASSPHRASE, backoff_cap_s=1.0)
        async with EdgeAgent(devices[SENIOR.user_id]) as senior:
            async with EdgeAgent(devices[JUNIOR.user_id]) as junior:  # bootstrap, then away
                await wait_for(lambda: _holds(junior, [("leads", "l1")]))
            offline = await _offline_work(devices[JUNIOR.user_id], events, imports, segments)
            made = offline.pop("made")
            async with EdgeAgent(devices[JUNIOR.user_id]) as junior:
                start = time.perf_counter()
                await wait_for(lambda: _drained(junior))
                drained = time.perf_counter() - start
                await wait_for(lambda: _holds(senior, made))
                on_other = time.perf_counter() - start
        hub_reads = await _hub_reads(server)
    return {**offline, "drain_s": drained, "other_device_s": on_other, **hub_reads}


async def _offline_work(settings: EdgeSettings, events: int, imports: int, segments: int
                        ) -> dict[str, Any]:
    """The junior's device with no network at all: local API writes and reads."""
    async with EdgeAgent(settings, sync=False) as agent, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_local_app(agent)), base_url="http://edge",
            headers={"Authorization": f"Bearer {agent.token}"}) as http:
        made: list[tuple[str, str]] = []
        event_ms, import_ms, read_ms = [], [], []
        for i in range(events):
            start = time.perf_counter()
            r = await http.post("/api/mobile-edge/events", json={
                "lead_id": "l1", "channel": "call", "summary": f"Call {i}"})
            event_ms.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            made.append(("comm_events", r.json()["id"]))
        for i in range(imports):
            start = time.perf_counter()
            r = await http.post("/api/mobile-edge/imports", json={
                "lead_id": "l1", "kind": "recording", "occurred_at": "2026-11-20T10:00:00Z",
                "transcript": [{"speaker": "broker" if k % 2 else "client", "start_ms": k * 3000,
                                "end_ms": k * 3000 + 2500, "text": f"Line {k} of call {i}"}
                               for k in range(segments)],
                "facts": [{"category": "budget", "fact": "INR 6 Cr"}]})
            import_ms.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            made.append(("comm_events", r.json()["id"]))
        for _ in range(50):
            start = time.perf_counter()
            (await http.get("/api/mobile-edge/events?lead_id=l1&limit=100")).raise_for_status()
            read_ms.append((time.perf_counter() - start) * 1000)
        pending = await agent.replica.pending_count()
    return {"events": events, "imports": imports, "segments": segments, "pending": pending,
            "event_p50_ms": median(event_ms), "event_p95_ms": percentile(event_ms, 0.95),
            "import_p50_ms": median(import_ms), "import_p95_ms": percentile(import_ms, 0.95),
            "edge_read_p50_ms": median(read_ms), "made": made}


async def _hub_reads(server: HubServer) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/auth/login", json={"email": "junior@bench.test",
                                                     "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        read_ms = []
        for _ in range(50):
            start = time.perf_counter()
            (await http.get("/api/mobile-edge/events?lead_id=l1&limit=100",
                            headers=headers)).raise_for_status()
            read_ms.append((time.perf_counter() - start) * 1000)
    return {"hub_read_p50_ms": median(read_ms)}


async def _drained(agent: EdgeAgent) -> bool:
    return bool(agent.sync and agent.sync.online) and await agent.replica.pending_count() == 0


async def _holds(agent: EdgeAgent, records: list[tuple[str, str]]) -> bool:
    try:
        for coll, rid in records:
            agent.replica.record(coll, rid)
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--imports", type=int, default=20)
    parser.add_argument("--segments", type=int, default=20)
    args = parser.parse_args()
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="velocity-mobile-edge-bench-"))
    try:
        with console.status("offline work on a device, then reconnect…"):
            f = asyncio.run(run(folder, args.events, args.imports, args.segments))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    md = "\n".join([
        "| measure | value |", "| --- | --- |",
        f"| `POST /events` on a device offline, p50 / p95 ({f['events']} calls) | "
        f"{f['event_p50_ms']:.1f} / {f['event_p95_ms']:.1f} ms |",
        f"| `POST /imports` offline, {f['segments']} segments + 1 fact, p50 / p95 "
        f"({f['imports']} calls) | {f['import_p50_ms']:.1f} / {f['import_p95_ms']:.1f} ms |",
        f"| {f['pending']:,} offline updates pushed on reconnect, until all acknowledged | "
        f"{f['drain_s']:.1f} s |",
        f"| …until the senior's device (online) holds every record | "
        f"{f['other_device_s']:.1f} s |",
        f"| `GET /events` (100 rows), device / hub, p50 | {f['edge_read_p50_ms']:.1f} / "
        f"{f['hub_read_p50_ms']:.1f} ms |",
    ])
    console.print(md)
    console.print(f"written to {write_results('mobile_edge', f, md)}")


if __name__ == "__main__":
    main()
