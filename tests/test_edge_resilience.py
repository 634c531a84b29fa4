"""The edge under faults: the local API up at once offline, reconnect timing, refusals that
never lose a later change (real hub, real PostgreSQL, real SQLite, a fault proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edge_agent.crypto import Sealer
from edge_agent.local_api import create_local_app
from edge_agent.reconnect import Backoff
from edge_agent.replica import RefusalKind, Replica
from edge_agent.service import EdgeAgent, local_token
from tests.hubkit import running_hub
from tests.reliability.kit import paired, until
from tests.reliability.proxy import FaultProxy
from tests.test_edge_local_api import _offline_device

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[1]
SECRET = b"k" * 32
PERSON = {"tenant_id": "t1", "owner_id": "u1", "full_name": "Zara Khan", "city": "Dubai"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_local_api_serves_at_once_with_the_hub_down(tmp_path: Path) -> None:
    """`velocity edge run` with no hub reachable serves the broker at once (it used to wait
    for a bootstrap that never came); with port 0 it prints the free port it got."""
    async with running_hub() as server:
        folder = tmp_path / "ipad"
        await paired(server, folder, "t1-senior_broker", hub_url=f"http://127.0.0.1:{_free_port()}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VELOCITY_EDGE_DATA_DIR": str(folder),
           "VELOCITY_EDGE_API_PORT": "0", "COLUMNS": "200"}
    log = tmp_path / "edge.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from cli.main import app; app()",
                                 "edge", "run"], env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        async def announced() -> bool:
            assert proc.poll() is None, log.read_text()
            return "local API on" in log.read_text()
        await until(announced, timeout=15, what="the local API's address")
        found = re.search(r"local API on http://127\.0\.0\.1:(\d+)", log.read_text())
        assert found and found[1] != "0", log.read_text()
        port = int(found[1])
        auth = {"Authorization": f"Bearer {local_token(folder)}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def serving() -> bool:
                assert proc.poll() is None, log.read_text()
                try:
                    return (await http.get("/status", headers=auth)).status_code == 200
                except httpx.TransportError:
                    return False
            await until(serving, timeout=15, what="local API")
            status = (await http.get("/status", headers=auth)).json()
            assert status["online"] is False and status["last_error"]
            r = await http.post("/api/crm/people", headers=auth,
                                json={"values": {"full_name": "Walk-in at the site"}})
            assert r.status_code == 201
        assert time.monotonic() - started < 15
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_backoff_starts_over_after_every_healthy_session(tmp_path: Path) -> None:
    """Healthy sessions cut again and again: each reconnect comes within the first delay (the
    backoff used to reset only after a session that ended without an error, i.e. never)."""
    async with running_hub() as server, FaultProxy(server.port) as proxy:
        settings = await paired(server, tmp_path / "ipad", "t1-senior_broker",
                                hub_url=proxy.url, backoff_base_s=0.5, backoff_cap_s=60)
        async with EdgeAgent(settings) as edge:
            sync = edge.sync
            assert sync is not None
            sync.backoff.healthy_after = 0.3
            waits = []
            for _ in range(6):
                await until(lambda: _online(edge), what="online")
                await _sleep(0.6)  # a healthy session
                sessions = sync.sessions
                proxy.cut()
                # the next session, not a poll of "offline": a fast reconnect can hide that state
                waits.append(await until(lambda s=sessions: _new_session(edge, s),
                                         what="back online"))
                assert sync.backoff.attempts <= 1
        assert max(waits) < 3, waits


async def test_the_edge_is_back_at_once_when_the_hub_returns(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """With a long reconnect delay pending, a hub that comes back is noticed by a probe and
    the edge reconnects in about a second, not at the end of the delay."""
    def pinned(self: Backoff) -> float:  # no jitter: the delay is known to be long
        self.attempts += 1
        return min(self.cap, self.base * 2 ** (self.attempts - 1))

    monkeypatch.setattr(Backoff, "next_delay", pinned)
    async with running_hub() as server, FaultProxy(server.port) as proxy:
        settings = await paired(server, tmp_path / "ipad", "t1-senior_broker",
                                hub_url=proxy.url, backoff_base_s=30, backoff_cap_s=60)
        await proxy.refuse()
        async with EdgeAgent(settings) as edge:
            await until(lambda: _failed_once(edge), what="a failed attempt")
            await _sleep(1.5)  # now waiting out a 30 s delay
            await proxy.accept()
            back = await until(lambda: _online(edge), timeout=10, what="back online")
        assert back < 5


async def test_a_final_refusal_rebuilds_only_that_change(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.write("people", "p1", PERSON)
        await replica.acknowledge([(await replica.outbox(10))[0].update_id])
        await replica.write("people", "p1", {"notes": "Sea view"})               # e1, in flight
        await replica.write("people", "p1", {"segment": "whale"})                # e2, refused
        await replica.write("people", "p1", {"city": "London"})                  # e3
        await replica.write("people", "p1", {"notes": "Sea view, high floor"})   # e4
        await replica.write("people", "p2", {**PERSON, "full_name": "Dev Shah"})  # unrelated
        e1, e2, e3, e4, other = await replica.outbox(10)
        outcome = await replica.refuse(e2.update_id, "people/p1", "manager_only_field", "no")
        assert outcome.kind is RefusalKind.REBUILT
        person = replica.record("people", "p1")
        assert person.segment is None
        assert (person.city, person.notes) == ("London", "Sea view, high floor")
        left = await replica.outbox(10)
        assert [e.update_id for e in left[:2]] == [e1.update_id, other.update_id]
        assert left[0].data == e1.data  # may be committed already: kept byte for byte
        assert len(left) == 4 and {e3.update_id, e4.update_id}.isdisjoint(
            e.update_id for e in left)
        [refusal] = await replica.refusals()
        assert refusal["fields"] == {"segment": "whale"}
        assert refusal["reason"] == "manager_only_field"


async def test_a_refused_creation_shows_the_later_changes_it_took_along(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.write("people", "p1", PERSON)
        await replica.write("people", "p1", {"city": "London"})
        await replica.write("people", "p2", {**PERSON, "full_name": "Dev Shah"})
        create, change, other = await replica.outbox(10)
        await replica.refuse(create.update_id, "people/p1", "other_tenant", "no")
        assert [e.update_id for e in await replica.outbox(10)] == [other.update_id]
        refusals = {r["update_id"]: r for r in await replica.refusals()}
        assert refusals[change.update_id]["reason"] == "depends_on_refused"
        assert refusals[change.update_id]["fields"] == {"city": "London"}
        assert refusals[create.update_id]["reason"] == "other_tenant"


async def test_a_retryable_refusal_keeps_the_change_under_a_new_id(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.write("people", "p1", PERSON)
        await replica.write("people", "p1", {"city": "London"})
        first, second = await replica.outbox(10)
        outcome = await replica.refuse(first.update_id, "people/p1", "worker_timeout", "slow")
        assert outcome.kind is RefusalKind.RETRY and outcome.position == first.position
        # the later update was refused as a gap behind it: pushed again after it
        outcome = await replica.refuse(second.update_id, "people/p1", "gap", "missing clocks")
        assert outcome.kind is RefusalKind.RETRY
        again = await replica.outbox(10)
        assert [e.data for e in again] == [first.data, second.data]
        assert {e.update_id for e in again}.isdisjoint({first.update_id, second.update_id})
        assert await replica.refusals() == []


async def test_sandbox_timeouts_on_the_hub_lose_no_write_of_the_device(tmp_path: Path) -> None:
    """The hub's sandbox hangs while a device pushes: the hub runs the timed-out jobs again on
    a fresh worker (or, when that times out too, refuses them as its own trouble and the device
    pushes them again); every write, later ones included, reaches the hub exactly once."""
    async with running_hub(sandbox_timeout_s=0.5) as server:
        settings = await paired(server, tmp_path / "ipad", "t1-senior_broker")
        ids = []
        async with EdgeAgent(settings, sync=False) as offline:
            for i in range(4):
                person = await offline.write("people", None, {"full_name": f"Visitor {i}"})
                await offline.write("people", person.id, {"city": "Pune"})
                await offline.write("people", person.id, {"notes": f"Visit {i}"})
                ids.append(person.id)
        stopped = [pid for pid in server.hub.sandbox.pids if pid is not None]
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)  # the library "hangs": the hub refuses, its fault
        try:
            async with EdgeAgent(settings) as edge:
                await until(lambda: _retried_or_drained(edge), what="a retry or a drain")
                for pid in stopped:
                    _continue(pid)  # (the hub has killed and replaced a hung worker)
                await until(lambda: _pending_zero(edge), timeout=30, what="outbox drained")
                assert await edge.replica.refusals() == []
        finally:
            for pid in stopped:
                _continue(pid)
        rows = await server.hub.db.pool.fetch("SELECT id, full_name, city, notes FROM crm_people")
        assert {(r["id"], r["full_name"], r["city"], r["notes"]) for r in rows} == {
            (pid, f"Visitor {i}", "Pune", f"Visit {i}") for i, pid in enumerate(ids)}
        assert await server.hub.db.pool.fetchval("SELECT count(*) FROM hub_updates") == 12


def _continue(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def _online(edge: EdgeAgent) -> bool:
    return edge.sync is not None and edge.sync.online


async def _new_session(edge: EdgeAgent, before: int) -> bool:
    return edge.sync is not None and edge.sync.online and edge.sync.sessions > before


async def _failed_once(edge: EdgeAgent) -> bool:
    return edge.sync is not None and edge.sync.backoff.attempts >= 1


async def _retried_or_drained(edge: EdgeAgent) -> bool:
    return edge.sync is not None and (edge.sync.retried > 0 or await _pending_zero(edge))


async def _pending_zero(edge: EdgeAgent) -> bool:
    return await edge.replica.pending_count() == 0


async def test_a_full_disk_answers_json_on_the_local_api_and_shows_in_status(
    tmp_path: Path,
) -> None:
    """The database can grow no more (SQLite's own size limit, the same SQLITE_FULL a full disk
    gives): the writer gets a JSON 507 saying so, earlier work stays readable, the status
    reports it until a write succeeds again."""
    async with EdgeAgent(_offline_device(tmp_path / "dev")) as agent:
        transport = httpx.ASGITransport(app=create_local_app(agent))
        auth = {"Authorization": f"Bearer {agent.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
            r = await http.post("/api/crm/people", headers=auth,
                                json={"values": {"full_name": "Zara Khan"}})
            assert r.status_code == 201
            db = agent.replica.db
            async with db.execute("PRAGMA page_count") as cur:
                pages = (await cur.fetchone())[0]  # type: ignore[index]
            await db.execute(f"PRAGMA max_page_count = {pages + 2}")
            for i in range(50):
                r = await http.post("/api/crm/people", headers=auth, json={
                    "values": {"full_name": f"Visitor {i}", "notes": "x" * 20_000}})
                if r.status_code != 201:
                    break
            assert r.status_code == 507, r.text
            assert r.json()["error"] == "disk_full" and "full" in r.json()["detail"]
            status = (await http.get("/status", headers=auth)).json()
            assert "full" in status["storage"]["error"]
            names = {c["full_name"] for c in (await http.get("/api/crm/contacts",
                                                              headers=auth)).json()}
            assert "Zara Khan" in names
            await db.execute("PRAGMA max_page_count = 1073741823")
            r = await http.post("/api/crm/people", headers=auth,
                                json={"values": {"full_name": "After space was freed"}})
            assert r.status_code == 201
            assert (await http.get("/status", headers=auth)).json()["storage"]["error"] is None


async def test_a_database_outage_ends_each_session_with_error_and_close_code() -> None:
    """The hub's database stops taking connections: a device connecting gets the protocol's
    ERROR with 4500 and a close frame (handshakes used to die with no close frame)."""
    from urllib.parse import urlsplit

    import asyncpg
    import websockets

    from sync import protocol as p
    from tests.hubkit import pair_device
    from tests.pg import server_url

    async with running_hub() as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 501)
        name = urlsplit(server.hub.database_url).path.lstrip("/")  # pgserver URLs add ?host=
        admin = await asyncpg.connect(server_url())
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
            for _ in range(3):
                async with websockets.connect(server.sync_url) as ws:
                    await ws.send(p.encode(p.Hello(dev.device_id, 0, (501,))))
                    error = p.decode(await ws.recv())  # type: ignore[arg-type]
                    assert isinstance(error, p.Error), error
                    assert error.close_code == p.CloseCode.INTERNAL
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await ws.recv()
                    assert closed.value.rcvd is not None
                    assert closed.value.rcvd.code == p.CloseCode.INTERNAL
        finally:
            try:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            finally:
                await admin.close()
