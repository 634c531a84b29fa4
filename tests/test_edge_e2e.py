"""End to end: real hub, real PostgreSQL, two edge agents with SQLite replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from edge_agent.device import pair
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from tests.hubkit import login, running_hub

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _paired(server: HubServer, folder: Path, user_id: str) -> EdgeSettings:
    admin = await login(server, "admin@t1.test")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/devices/pairing-codes", headers=admin,
                            json={"user_id": user_id, "device_kind": "ipad"})
        code = r.json()["code"]
    await pair(folder, server.url, code, folder.name)
    return EdgeSettings(data_dir=folder, backoff_cap_s=0.5)


async def test_two_edges_edit_offline_while_hub_is_down_and_converge(tmp_path: Path) -> None:
    async with running_hub() as server:
        url = server.hub.database_url
        a = await _paired(server, tmp_path / "a", "t1-senior_broker")
        b = await _paired(server, tmp_path / "b", "t1-sales_director")
        async with EdgeAgent(a) as edge_a:
            person = await edge_a.write("people", None, {"full_name": "Zara Khan",
                                                         "notes": "Wants a sea view."})
            lead = await edge_a.write("leads", None, {"person_id": person.id})
            await until(lambda: _pending_zero(edge_a))
        port = server.port
    # The hub is down: both edges work on.
    async with EdgeAgent(a) as edge_a, EdgeAgent(b) as edge_b:
        await edge_a.write("people", person.id, {"city": "Dubai",
                                                 "notes": "Wants a sea view. High floor."})
        await edge_a.write("leads", lead.id, {"stage": "QUALIFIED"})
        assert not edge_a.sync.online  # type: ignore[union-attr]
    async with running_hub(url) as server2:
        # Edges remember the old hub URL; point them at the restarted hub.
        for s in (a, b):
            path = s.data_dir / "device.json"
            path.write_text(path.read_text().replace(f":{port}", f":{server2.port}"))
        async with EdgeAgent(b) as edge_b:
            await until(lambda: _has(edge_b, "people", person.id))
            await edge_b.write("people", person.id, {"city": "London",
                                                     "notes": "Budget 12 Cr. Wants a sea view."})
            await until(lambda: _pending_zero(edge_b))
            async with EdgeAgent(a) as edge_a:
                await until(lambda: _pending_zero(edge_a))
                await until(lambda: _same(edge_a, edge_b, f"people/{person.id}"))
                await until(lambda: _same(edge_a, edge_b, f"leads/{lead.id}"))
                final = edge_a.replica.record("people", person.id)
                assert "High floor" in final.notes and "12 Cr" in final.notes
                assert final.city in ("Dubai", "London")
                assert edge_b.replica.record("leads", lead.id).stage == "QUALIFIED"
                hub_city = await server2.hub.db.pool.fetchval(
                    "SELECT city FROM crm_people WHERE id = $1", person.id)
                assert hub_city == final.city


async def _pending_zero(agent: EdgeAgent) -> bool:
    return await agent.replica.pending_count() == 0


async def _cursor_moved(agent: EdgeAgent) -> bool:
    return await agent.replica.cursor() > 0


async def _has(agent: EdgeAgent, coll: str, rid: str) -> bool:
    return not agent.replica.document(f"{coll}/{rid}").is_empty


async def _same(a: EdgeAgent, b: EdgeAgent, guid: str) -> bool:
    return a.replica.document(guid).content() == b.replica.document(guid).content()


async def test_a_revoked_device_stops_syncing_and_keeps_its_local_work(tmp_path: Path) -> None:
    async with running_hub() as server:
        settings = await _paired(server, tmp_path / "ipad", "t1-senior_broker")
        async with EdgeAgent(settings) as edge:
            assert edge.sync is not None
            await asyncio.wait_for(edge.sync.caught_up.wait(), 10)
            admin = await login(server, "admin@t1.test")
            async with httpx.AsyncClient(base_url=server.url) as http:
                r = await http.post(f"/api/devices/{edge.pairing.device_id}/revoke",
                                    headers=admin)
                assert r.status_code == 200
            await until(lambda: _stopped(edge))
            await edge.write("people", None, {"full_name": "Written after revocation"})
            status = await edge.status()
            assert status["online"] is False and status["stopped"]
            assert status["pending_updates"] == 1
        assert await server.hub.db.pool.fetchval("SELECT count(*) FROM hub_updates") == 0


async def _stopped(agent: EdgeAgent) -> bool:
    return agent.sync is not None and agent.sync.stopped_reason is not None


_PUSHER = """
import asyncio, sys
from pathlib import Path
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings

async def main():
    async with EdgeAgent(EdgeSettings(data_dir=Path(sys.argv[1]), push_batch=5)) as agent:
        await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_kill_9_in_the_middle_of_a_push_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys

    async with running_hub() as server:
        settings = await _paired(server, tmp_path / "ipad", "t1-senior_broker")
        async with EdgeAgent(settings, sync=False) as offline:
            for i in range(300):
                await offline.write("people", None, {"full_name": f"Visitor {i}"})
        proc = subprocess.Popen([sys.executable, "-c", _PUSHER, str(settings.data_dir)],
                                cwd=Path(__file__).resolve().parents[1])
        pool = server.hub.db.pool
        try:
            await until(lambda: _count_between(pool, 1, 299), timeout=30)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        async with EdgeAgent(settings) as edge:
            await until(lambda: _pending_zero(edge), timeout=60)
        assert await pool.fetchval("SELECT count(*) FROM hub_updates") == 300
        assert await pool.fetchval("SELECT count(*) FROM crm_people") == 300
        assert await pool.fetchval("SELECT count(DISTINCT update_id) FROM hub_updates"
                                   ) == 300


async def _count_between(pool: object, low: int, high: int) -> bool:
    n = await pool.fetchval("SELECT count(*) FROM hub_updates")  # type: ignore[attr-defined]
    return bool(low <= n <= high)


async def test_a_device_with_nothing_new_is_told_it_is_caught_up(tmp_path: Path) -> None:
    """`velocity edge run` waits for "caught up" before serving the local API: a restart with
    nothing new on the hub must still get there."""
    async with running_hub() as server:
        settings = await _paired(server, tmp_path / "a", "t1-senior_broker")
        async with EdgeAgent(settings) as edge:
            assert edge.sync is not None
            await asyncio.wait_for(edge.sync.caught_up.wait(), 20)
            await edge.write("people", None, {"full_name": "Zara Khan"})
            await until(lambda: _pending_zero(edge))
            await until(lambda: _cursor_moved(edge))  # its own commit came back (a slow
            # machine can end the session between the ACK and that pull: cursor 0 bootstraps)
        async with EdgeAgent(settings) as edge:
            assert edge.sync is not None
            await asyncio.wait_for(edge.sync.caught_up.wait(), 20)
            assert edge.sync.online and edge.sync.incoming == 0  # resumes: no bootstrap
        fresh = await _paired(server, tmp_path / "b", "t1-sales_director")
        async with EdgeAgent(fresh) as edge:
            assert edge.sync is not None
            await asyncio.wait_for(edge.sync.caught_up.wait(), 20)
            assert edge.sync.incoming == edge.replica.document_count == 1  # the progress total


async def test_a_lead_reassigned_away_leaves_the_old_owners_device(tmp_path: Path) -> None:
    """A director gives a junior broker's lead to another broker while the junior is offline
    and still editing it: on reconnecting, the junior's device drops the lead (it may no longer
    read it) and shows why; the new owner's device receives it."""
    from core.identity import Principal, Role

    async with running_hub() as server:
        junior = await _paired(server, tmp_path / "junior", "t1-junior_broker")
        other = await _paired(server, tmp_path / "other", "t1-junior2")
        async with EdgeAgent(junior) as edge:
            assert edge.sync is not None
            await asyncio.wait_for(edge.sync.caught_up.wait(), 20)  # bootstrapped first
            person = await edge.write("people", None, {"full_name": "Aarav Mehta"})
            lead = await edge.write("leads", None, {"person_id": person.id})
            await until(lambda: _pending_zero(edge))
        async with EdgeAgent(junior, sync=False) as offline:
            await offline.write("leads", lead.id, {"notes": "Call back on Friday."})
        director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR, "north")
        await server.hub.writer.write(director, "leads", lead.id, {"owner_id": "t1-junior2"},
                                      create=False)
        async with EdgeAgent(junior) as edge, EdgeAgent(other) as edge2:
            async def dropped() -> bool:
                return (f"leads/{lead.id}" not in {d.guid for d in edge.replica.documents()}
                        and await _pending_zero(edge))
            await until(dropped)
            assert await edge.replica.query(
                "SELECT id FROM temp.crm_leads WHERE id = ?", (lead.id,)) == []
            assert edge.replica.record("people", person.id).full_name == "Aarav Mehta"
            assert {r["guid"] for r in await edge.replica.refusals()} == {f"leads/{lead.id}"}
            await until(lambda: _has(edge2, "leads", lead.id))
            assert edge2.replica.record("leads", lead.id).owner_id == "t1-junior2"
        async with EdgeAgent(junior, sync=False) as restarted:  # and it stays gone
            assert f"leads/{lead.id}" not in {d.guid for d in restarted.replica.documents()}
