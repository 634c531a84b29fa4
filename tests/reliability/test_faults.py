"""The standing fault suite: real processes and real parts, faults at random moments.

After every run: each write the local API acknowledged is on the hub exactly once (no write is
there twice), the replica equals the hub, and SQLite's integrity check passes. The fault plan
comes from ``VELOCITY_FAULT_SEED`` (printed on failure, so a run can be repeated).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from edge_agent.service import EdgeAgent, local_token
from tests.hubkit import running_hub
from tests.pg import fresh_database
from tests.reliability.kit import (
    Process,
    free_port,
    integrity,
    logs_on_failure,
    paired,
    point_at,
    until,
)

pytestmark = pytest.mark.anyio
SEED = int(os.environ.get("VELOCITY_FAULT_SEED", str(random.randrange(1 << 16))))
TOKEN = re.compile(r"\[([a-z]\d+)\]")


class Writer:
    """A broker's app on the device: creates people and appends to their notes through the
    local API; remembers which writes were acknowledged."""

    def __init__(self, api_port: int, token: str, rng: random.Random) -> None:
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=5,
                                      headers={"Authorization": f"Bearer {token}"})
        self.rng = rng
        self.notes: dict[str, str] = {}
        self.acked: set[str] = set()
        self.tried = 0

    async def write_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.write_one()

    async def write_one(self) -> None:
        self.tried += 1
        token = f"[w{self.tried}]"
        try:
            if not self.notes or self.rng.random() < 0.3:
                r = await self.http.post("/api/crm/people", json={
                    "values": {"full_name": f"Visitor {self.tried}", "notes": token}})
                if r.status_code == 201:
                    self.notes[r.json()["id"]] = token
            else:
                person = self.rng.choice(sorted(self.notes))
                notes = self.notes[person] + token
                r = await self.http.patch(f"/api/crm/people/{person}",
                                          json={"values": {"notes": notes}})
                if r.status_code == 200:
                    self.notes[person] = notes
        except httpx.TransportError:
            await asyncio.sleep(0.05)  # the agent is down: the app waits a moment
            return
        assert r.status_code in (200, 201), r.text
        self.acked.add(token.strip("[]"))

    async def serving(self) -> bool:
        try:
            return (await self.http.get("/status")).status_code == 200
        except httpx.TransportError:
            return False

    async def drained(self) -> bool:
        try:
            status = (await self.http.get("/status")).json()
        except httpx.TransportError:
            return False
        return bool(status["online"] and status["pending_updates"] == 0)


async def test_kill_9_of_edge_and_hub_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    url = await fresh_database()
    folder = tmp_path / "ipad"
    async with running_hub(url) as server:  # tenants, users and the pairing
        await paired(server, folder, "t1-senior_broker")
    hub_port, api_port = free_port(), free_port()
    point_at(folder, f"http://127.0.0.1:{hub_port}")
    hub = Process(["hub", "serve"], {"DATABASE_URL": url, "VELOCITY_PORT": str(hub_port),
                                     "VELOCITY_DATA_DIR": str(tmp_path / "hub")},
                  tmp_path / "hub.log")
    edge = Process(["edge", "run"], {"VELOCITY_EDGE_DATA_DIR": str(folder),
                                     "VELOCITY_EDGE_API_PORT": str(api_port),
                                     "VELOCITY_EDGE_BACKOFF_CAP_S": "2"},
                   tmp_path / "edge.log")
    writer = Writer(api_port, local_token(folder), rng)
    kills = {"edge": 0, "hub": 0}
    hub.start()
    edge.start()
    try:
        with logs_on_failure(hub.log, edge.log):
            await until(writer.serving, timeout=30, what="the local API")
            for _ in range(5):
                await writer.write_for(rng.uniform(0.5, 1.5))
                name, victim = rng.choice([("edge", edge), ("hub", hub), ("edge", edge)])
                victim.kill_9()
                kills[name] += 1
                await writer.write_for(rng.uniform(0.1, 0.6))
                victim.start()
                await until(writer.serving, timeout=30, what="the local API")
            await writer.write_for(1.0)
            await until(writer.drained, timeout=60, what=f"the edge drained (seed {SEED})")
    finally:
        await writer.http.aclose()
        edge.stop()
        hub.stop()
    assert integrity(folder / "replica.db") == "ok"
    assert len(writer.acked) > 40, f"too few writes got through: {writer.acked}"
    await _check_exactly_once(url, folder, writer.acked, kills)


async def _check_exactly_once(url: str, folder: Path, acked: set[str],
                              faults: dict[str, int]) -> None:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, full_name, notes FROM crm_people")
    finally:
        await conn.close()
    on_hub = {r["id"]: (r["full_name"], r["notes"]) for r in rows}
    seen: dict[str, int] = {}
    for _, notes in on_hub.values():
        for token in TOKEN.findall(notes or ""):
            seen[token] = seen.get(token, 0) + 1
    context = f"seed {SEED}, faults {faults}"
    assert {t for t, n in seen.items() if n > 1} == set(), f"written twice ({context})"
    assert acked - seen.keys() == set(), f"acknowledged but lost ({context})"
    from edge_agent.settings import EdgeSettings

    async with EdgeAgent(EdgeSettings(data_dir=folder), sync=False) as agent:
        replica = {r["id"]: (r["full_name"], r["notes"]) for r in await agent.replica.query(
            "SELECT id, full_name, notes FROM temp.crm_people")}
    assert replica == on_hub, f"the replica differs from the hub ({context})"


class InProcessWriter:
    """Writes on an in-process edge agent (acknowledged = the write returned)."""

    def __init__(self, agent: EdgeAgent, name: str, rng: random.Random) -> None:
        self.agent, self.name, self.rng = agent, name, rng
        self.acked: set[str] = set()
        self.count = 0

    async def write(self, n: int) -> None:
        for _ in range(n):
            self.count += 1
            token = f"{self.name}{self.count}"
            people = sorted(d.record_id for d in self.agent.replica.documents()
                            if d.collection.name == "people")
            if not people or self.rng.random() < 0.3:
                await self.agent.write("people", None, {"full_name": f"Visitor {token}",
                                                        "notes": f"[{token}]"})
            else:
                def append(content: dict[str, object], token: str = token) -> dict[str, object]:
                    return {"notes": f"{content.get('notes') or ''}[{token}]"}
                # appended to the text as it stands when written (changes pulled meanwhile kept)
                await self.agent.write("people", self.rng.choice(people), append)
            self.acked.add(token)


async def test_network_cuts_delays_stalls_and_refusals(tmp_path: Path) -> None:
    """Two devices of one broker behind a fault proxy: cut, slowed, stalled (half-open) and
    refused links while both write, each on records the other changes too."""
    from tests.reliability.proxy import FaultProxy

    rng = random.Random(SEED)
    async with running_hub() as server, FaultProxy(server.port) as proxy:
        a = await paired(server, tmp_path / "a", "t1-senior_broker", hub_url=proxy.url)
        b = await paired(server, tmp_path / "b", "t1-senior_broker", hub_url=proxy.url)
        faults: dict[str, int] = {}
        async with EdgeAgent(a) as edge_a, EdgeAgent(b) as edge_b:
            writers = [InProcessWriter(edge_a, "a", rng), InProcessWriter(edge_b, "b", rng)]
            for _ in range(5):
                fault = rng.choice(["cut", "delay", "stall", "refuse"])
                faults[fault] = faults.get(fault, 0) + 1
                if fault == "cut":
                    proxy.cut()
                elif fault == "delay":
                    proxy.delay_s = 0.05
                elif fault == "stall":
                    proxy.stall()
                else:
                    await proxy.refuse()
                for writer in writers:
                    await writer.write(rng.randint(3, 10))
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                proxy.delay_s = 0
                proxy.flow()
                await proxy.accept()
                for writer in writers:
                    await writer.write(rng.randint(3, 10))
                await asyncio.sleep(rng.uniform(0.2, 0.6))
            proxy.cut()  # a stalled link may hold a session open: start clean

            async def converged() -> bool:
                if any([await e.replica.pending_count() for e in (edge_a, edge_b)]):
                    return False
                docs = [{d.guid: d.content() for d in e.replica.documents()}
                        for e in (edge_a, edge_b)]
                return docs[0] == docs[1]
            await until(converged, timeout=60, what=f"convergence (seed {SEED}, {faults})")
            acked = writers[0].acked | writers[1].acked
        for folder in (a.data_dir, b.data_dir):
            assert integrity(folder / "replica.db") == "ok"
        await _check_exactly_once(server.hub.database_url, a.data_dir, acked, faults)


async def test_postgresql_restarted_mid_stream(tmp_path: Path) -> None:
    """The hub's PostgreSQL (a private server of this test, never a shared one) restarts while
    a device pushes a backlog and writes on: sessions end with ERROR 4500, the device comes
    back, nothing is lost or doubled."""
    import pgserver
    from pgserver.postgres_server import pg_ctl

    rng = random.Random(SEED)
    # its own folder under the temporary directory (the server's user must reach it)
    pg = pgserver.get_server(Path(tempfile.mkdtemp(prefix="velocity-test-pg-")),
                             cleanup_mode="delete")
    try:
        admin = await asyncpg.connect(pg.get_uri())
        await admin.execute("CREATE DATABASE velocity")
        await admin.close()
        url = pg.get_uri("velocity")
        async with running_hub(url) as server:
            settings = await paired(server, tmp_path / "ipad", "t1-senior_broker")
            async with EdgeAgent(settings, sync=False) as offline:
                backlog = InProcessWriter(offline, "o", rng)
                await backlog.write(120)
            async with EdgeAgent(settings) as edge:
                writer = InProcessWriter(edge, "w", rng)
                await until(lambda: _hub_has_some(server), what="pushing")
                await asyncio.to_thread(pg_ctl, ["-w", "-m", "fast", "restart"],
                                        pgdata=pg.pgdata, user=pg.system_user, timeout=60)
                await writer.write(20)
                await until(lambda: _drained(edge), timeout=60,
                            what=f"the edge drained (seed {SEED})")
            acked = backlog.acked | writer.acked
            await _check_exactly_once(url, settings.data_dir, acked, {"pg_restart": 1})
            assert integrity(settings.data_dir / "replica.db") == "ok"
    finally:
        pg.cleanup()


async def _hub_has_some(server: object) -> bool:
    pool = server.hub.db.pool  # type: ignore[attr-defined]
    return bool(await pool.fetchval("SELECT count(*) FROM hub_updates") > 20)


async def _drained(edge: EdgeAgent) -> bool:
    return bool(edge.sync and edge.sync.online and await edge.replica.pending_count() == 0)


async def test_fail_over_to_a_second_hub(tmp_path: Path) -> None:
    """Two hub processes on one PostgreSQL behind one address: the first is cut off mid-stream
    and connections go to the second; nothing is lost or doubled."""
    from tests.reliability.proxy import FaultProxy

    rng = random.Random(SEED)
    async with running_hub() as first, running_hub(first.hub.database_url) as second, \
            FaultProxy(first.port) as proxy:
        settings = await paired(first, tmp_path / "ipad", "t1-senior_broker",
                                hub_url=proxy.url)
        async with EdgeAgent(settings, sync=False) as offline:
            backlog = InProcessWriter(offline, "o", rng)
            await backlog.write(60)
        async with EdgeAgent(settings) as edge:
            writer = InProcessWriter(edge, "w", rng)
            await until(lambda: _hub_has_some(first), what="pushing to the first hub")
            await proxy.retarget(second.port)  # the first hub is gone for this device
            await writer.write(20)
            await until(lambda: _drained(edge), timeout=60,
                        what=f"the edge drained on the second hub (seed {SEED})")
        await _check_exactly_once(first.hub.database_url, settings.data_dir,
                                  backlog.acked | writer.acked, {"fail_over": 1})
        assert integrity(settings.data_dir / "replica.db") == "ok"
