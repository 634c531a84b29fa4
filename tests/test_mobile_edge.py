"""The mobile-edge surface end to end: a hub on PostgreSQL and two edge agents (a junior broker's
iPad and their senior's), every route used offline on a device, then reconnected."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from edge_agent.device import IDENTITY_FILE
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from hub.server import HubServer
from tests.hubkit import login, running_hub
from tests.reliability.kit import paired, until
from tests.reliability.proxy import FaultProxy

pytestmark = pytest.mark.anyio

JUNIOR = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, "north")
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR, "north")
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
IST = timezone(timedelta(hours=5, minutes=30))


class Device:
    """An edge agent behind its own proxy (so its network can be cut), with its local API."""

    def __init__(self, agent: EdgeAgent, proxy: FaultProxy, http: httpx.AsyncClient) -> None:
        self.agent, self.proxy, self.http = agent, proxy, http

    async def offline(self) -> None:
        await self.proxy.refuse()
        self.proxy.cut()
        await until(lambda: _offline(self.agent), what="device offline")

    async def online(self) -> None:
        await self.proxy.accept()
        self.agent.sync.wake()  # type: ignore[union-attr]
        await until(lambda: _drained(self.agent), timeout=40, what="outbox drained")

    async def has(self, coll: str, rid: str) -> bool:
        try:
            return not self.agent.replica.record(coll, rid).deleted
        except Exception:
            return False

    async def call(self, method: str, path: str, json: Any = None,
                   status: int | None = None) -> Any:
        r = await self.http.request(method, f"/api/mobile-edge{path}", json=json)
        if status is not None:
            assert r.status_code == status, (path, r.text)
        return r.json()


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _offline(agent: EdgeAgent) -> bool:
    return not agent.sync.online  # type: ignore[union-attr]


async def _drained(agent: EdgeAgent) -> bool:
    return agent.sync.online and await agent.replica.pending_count() == 0  # type: ignore[union-attr]


@asynccontextmanager
async def device(stack: AsyncExitStack, server: HubServer, folder: Path, user_id: str,
                 client_id: int | None = None) -> AsyncIterator[Device]:
    """A paired device; ``client_id``: its CRDT client id (it decides which of two concurrent
    writes of a field the merge keeps: the higher id's)."""
    proxy = await stack.enter_async_context(FaultProxy(server.port))
    settings = await paired(server, folder, user_id, hub_url=proxy.url)
    if client_id is not None:
        path = folder / IDENTITY_FILE
        path.write_text(json.dumps({**json.loads(path.read_text()), "client_id": client_id}))
    agent = await stack.enter_async_context(EdgeAgent(settings))
    http = await stack.enter_async_context(httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_local_app(agent)), base_url="http://edge",
        headers={"Authorization": f"Bearer {agent.token}"}))
    yield Device(agent, proxy, http)


async def _seed(server: HubServer) -> dict[str, str]:
    """A client and lead of the junior (team north), an appointment on it and two insights."""
    writer = server.hub.writer
    scope = {"tenant_id": "t1", "owner_id": JUNIOR.user_id, "team_id": "north"}
    await writer.write_many(JUNIOR, [
        ("people", "p1", {**scope, "full_name": "Zara Khan"}),
        ("leads", "l1", {**scope, "person_id": "p1", "stage": "QUALIFIED"}),
        ("calendar_events", "cal1", {**scope, "lead_id": "l1", "title": "Site visit",
                                     "kind": "site_visit", "starts_at": SOON.isoformat(),
                                     "duration_min": 60,
                                     "location": "Aurelia Towers lobby"}),
    ], create=True)
    await writer.write_many(DIRECTOR, [
        ("insights", f"ins{n}", {**scope, "lead_id": "l1", "title": title, "priority": n})
        for n, title in ((1, "Offer the festive price on a higher floor"),
                         (2, "Invite the spouse to the next visit"))], create=True)
    return {"lead": "l1", "calendar": "cal1"}


async def test_every_route_offline_on_an_edge_reaches_the_hub_and_the_other_edge(
        tmp_path: Path) -> None:
    async with running_hub() as server, AsyncExitStack() as stack, \
            httpx.AsyncClient(base_url=server.url) as hub_http:
        await _seed(server)
        async with device(stack, server, tmp_path / "ipad", JUNIOR.user_id) as a, \
                device(stack, server, tmp_path / "senior", "t1-senior_broker") as b:
            for d in (a, b):
                await until(lambda d=d: d.has("insights", "ins2"), what="seed on device")
            await a.offline()
            await b.offline()

            # Every route on the junior's iPad with no network.
            event = await a.call("POST", "/events", {
                "lead_id": "l1", "channel": "call", "direction": "outbound",
                "duration_s": 420, "summary": "Pricing call", "body": "Asked for 2 car parks."},
                201)
            assert event["owner_id"] == JUNIOR.user_id and event["person_id"] == "p1"
            note = await a.call("POST", "/notes", {"lead_id": "l1", "text": "Spouse decides.",
                                                   "facts": [{"category": "family",
                                                              "fact": "Spouse decides"}]}, 201)
            imported = await a.call("POST", "/imports", {
                "lead_id": "l1", "kind": "recording", "occurred_at": "2026-11-20T10:00:00+05:30",
                "recording_ref": "vault://calls/1.m4a", "transcript": [
                    {"speaker": "broker", "start_ms": 0, "end_ms": 3000, "text": "Hello Zara"},
                    {"speaker": "client", "start_ms": 3000, "end_ms": 9000,
                     "text": "Budget is 6 crore"}],
                "facts": [{"category": "budget", "fact": "INR 6 Cr", "confidence": 0.9}]}, 201)
            assert imported["occurred_at"] == "2026-11-20T04:30:00Z"
            assert imported["segments"] == 2 and len(imported["facts"]) == 1
            appointment = await a.call("POST", "/calendar", {
                "title": "Call back Zara", "kind": "call", "lead_id": "l1",
                "starts_at": (SOON + timedelta(hours=1)).isoformat(), "duration_min": 30}, 201)
            assert appointment["team_id"] == "north" and appointment["status"] == "scheduled"
            spare = await a.call("POST", "/calendar", {
                "title": "Hold", "starts_at": SOON.isoformat(), "duration_min": 0},
                201)
            await a.call("PATCH", f"/calendar/{appointment['id']}", {"location": "Phone"}, 200)
            cancelled = await a.call("DELETE", f"/calendar/{spare['id']}", None, 200)
            assert cancelled["status"] == "cancelled"
            newest_first = [note["id"], event["id"], imported["id"]]
            assert [e["id"] for e in await a.call("GET", "/events?lead_id=l1", None, 200)] == \
                newest_first
            assert {m["fact"] for m in await a.call("GET", "/memory?lead_id=l1")} == {
                "Spouse decides", "INR 6 Cr"}
            assert [s["text"] for s in await a.call("GET", f"/transcripts/{imported['id']}")] \
                == ["Hello Zara", "Budget is 6 crore"]
            assert [i["id"] for i in await a.call("GET", "/insights/l1")] == ["ins1", "ins2"]
            assert [c["id"] for c in await a.call("GET", "/calendar")] == [
                "cal1", appointment["id"]]
            window = {"start": (SOON + timedelta(minutes=30)).isoformat(),
                      "end": (SOON + timedelta(days=1)).astimezone(IST).isoformat()}
            r = await a.http.get("/api/mobile-edge/calendar", params=window)
            assert [c["id"] for c in r.json()] == [appointment["id"]]
            alerts = await a.call("GET", "/alerts", None, 200)
            assert {(x["kind"], x["record"]) for x in alerts} >= {
                ("insight", "insights/ins1"), ("upcoming_appointment", "calendar_events/cal1")}
            beat = await a.call("POST", "/session", {"surface_id": "ipad-main",
                                                     "surface": "ipad_app"}, 200)
            assert beat["active_surfaces"] == 1 and beat["beats"] == 1

            # Back online: the hub and the senior's device have every record.
            await a.online()
            await b.online()
            made = [("comm_events", event["id"]), ("comm_events", note["id"]),
                    ("comm_events", imported["id"]), ("memory_facts", imported["facts"][0]),
                    ("memory_facts", note["facts"][0]),
                    ("calendar_events", appointment["id"])]
            for coll, rid in made:
                await until(lambda c=coll, r=rid: b.has(c, r), what=f"{coll} on the senior's")
            junior = await login(server, "junior_broker@t1.test")
            r = await hub_http.get("/api/mobile-edge/events?lead_id=l1", headers=junior)
            assert [e["id"] for e in r.json()] == newest_first
            r = await hub_http.get(f"/api/mobile-edge/transcripts/{imported['id']}",
                                   headers=junior)
            assert [s["speaker"] for s in r.json()] == ["broker", "client"]
            r = await hub_http.get("/api/mobile-edge/calendar?include_cancelled=true",
                                   headers=junior)
            by_id = {c["id"]: c for c in r.json()}
            assert by_id[appointment["id"]]["location"] == "Phone"
            assert by_id[spare["id"]]["status"] == "cancelled"
            r = await hub_http.get("/api/mobile-edge/calendar", params=window, headers=junior)
            assert [c["id"] for c in r.json()] == [appointment["id"]]
            senior = await b.call("GET", f"/transcripts/{imported['id']}", None, 200)
            assert len(senior) == 2
            # The senior's note on the junior's lead stays in the lead's scope: the junior has it.
            told = await b.call("POST", "/notes", {"lead_id": "l1", "text": "Push for Friday"},
                                201)
            assert (told["owner_id"], told["team_id"]) == (JUNIOR.user_id, "north")
            await until(lambda: a.has("comm_events", told["id"]), what="note on the junior's")


@pytest.mark.parametrize("second_wins_merge", [True, False],
                         ids=["second-decision-refused", "second-decision-merged-away"])
async def test_offline_edits_on_two_devices_merge_and_an_insight_is_decided_once(
        tmp_path: Path, second_wins_merge: bool) -> None:
    """Both devices decide the same insight offline; the junior's decision is committed first.
    Whichever way the CRDT merge of the two would go, the first decision is the one that
    stands everywhere: when the senior's would win the merge, the hub refuses it
    (``already_decided``); when it would lose, it changes nothing."""
    low, high = 1_000, 2**40
    async with running_hub() as server, AsyncExitStack() as stack, \
            httpx.AsyncClient(base_url=server.url) as hub_http:
        await _seed(server)
        async with device(stack, server, tmp_path / "ipad", JUNIOR.user_id,
                          low if second_wins_merge else high) as a, \
                device(stack, server, tmp_path / "senior", "t1-senior_broker",
                       high if second_wins_merge else low) as b:
            for d in (a, b):
                await until(lambda d=d: d.has("insights", "ins2"), what="seed on device")
            await a.offline()
            await b.offline()
            later = SOON + timedelta(days=1)
            await a.call("PATCH", "/calendar/cal1", {
                "starts_at": later.isoformat(), "notes": "Bring the floor plans."}, 200)
            await b.call("PATCH", "/calendar/cal1", {"location": "Sales gallery, tower B",
                                                    "title": "Site visit with family",
                                                    "duration_min": 180}, 200)
            acted = await a.call("POST", "/insights/ins1/act", {"action": "act",
                                                                "note": "Offered"}, 200)
            assert acted["status"] == "acted"
            dismissed = await b.call("POST", "/insights/ins1/act", {"action": "dismiss"}, 200)
            assert dismissed["status"] == "dismissed"  # locally, until the hub answers
            await a.call("POST", "/insights/ins1/act", {"action": "dismiss"}, 409)

            await a.online()  # the junior's decision is committed first
            await b.online()
            # Every field edited offline survives: the junior moved the visit to the next day,
            # the senior made it longer, renamed it and moved it to the sales gallery.
            want = {"starts_at": _z(later), "duration_min": 180,
                    "location": "Sales gallery, tower B", "title": "Site visit with family",
                    "notes": "Bring the floor plans.", "status": "scheduled"}

            async def merged(d: Device) -> bool:
                row = d.agent.replica.record("calendar_events", "cal1").model_dump(mode="json")
                return {k: row[k] for k in want} == want

            async def decided(d: Device) -> bool:
                row = d.agent.replica.record("insights", "ins1")
                return (row.status, row.decided_by) == ("acted", JUNIOR.user_id)

            for d in (a, b):
                await until(lambda d=d: merged(d), what="merged appointment")
                await until(lambda d=d: decided(d), what="one decision")
            junior = await login(server, "junior_broker@t1.test")
            r = await hub_http.get("/api/mobile-edge/calendar", headers=junior)
            (cal,) = [c for c in r.json() if c["id"] == "cal1"]
            assert {k: cal[k] for k in want} == want
            r = await hub_http.get("/api/mobile-edge/insights/l1?include_decided=true",
                                   headers=junior)
            (ins,) = [i for i in r.json() if i["id"] == "ins1"]
            assert (ins["status"], ins["decided_by"], ins["decision_note"]) == (
                "acted", JUNIOR.user_id, "Offered")
            refusals = [(f["guid"], f["reason"]) for f in await b.agent.replica.refusals()]
            if second_wins_merge:  # the senior's device is told why its decision did not stand
                assert refusals == [("insights/ins1", "already_decided")]
            else:
                assert refusals == []
            assert await a.agent.replica.refusals() == []


BAD_BODIES: list[tuple[str, str, Any]] = [
    ("POST", "/events", {"lead_id": "l1", "channel": "carrier pigeon"}),
    ("POST", "/events", {"lead_id": "l1", "channel": "call", "duration_s": -5}),
    ("POST", "/events", {"lead_id": "l1", "channel": "call", "owner_id": "t1-admin"}),
    ("POST", "/events", {"lead_id": "", "channel": "call"}),
    ("POST", "/notes", {"lead_id": "l1", "text": ""}),
    ("POST", "/notes", {"lead_id": "l1", "text": "x", "facts": [{"category": "star sign",
                                                                "fact": "Leo"}]}),
    ("POST", "/imports", {"lead_id": "l1", "kind": "recording",
                          "occurred_at": "2026-11-20T10:00:00Z"}),
    ("POST", "/imports", {"lead_id": "l1", "kind": "recording", "occurred_at": "yesterday",
                          "transcript": [{"speaker": "a", "start_ms": 0, "end_ms": 1,
                                          "text": "hi"}]}),
    ("POST", "/imports", {"lead_id": "l1", "kind": "recording", "occurred_at":
                          "2026-11-20T10:00:00Z", "transcript": [
                              {"speaker": "a", "start_ms": 500, "end_ms": 100, "text": "hi"}]}),
    ("POST", "/calendar", {"title": "Visit", "starts_at": "2026-11-20T11:00:00Z",
                           "duration_min": -30}),
    ("POST", "/calendar", {"title": "", "starts_at": "2026-11-20T10:00:00Z"}),
    ("POST", "/calendar", {"title": "Visit", "starts_at": "2026-11-20T10:00:00Z",
                           "ends_at": "2026-11-20T11:00:00Z"}),
    ("PATCH", "/calendar/cal1", {}),
    ("PATCH", "/calendar/cal1", {"status": "cancelled"}),
    ("PATCH", "/calendar/cal1", {"duration_min": 100_000}),
    ("PATCH", "/calendar/cal1", {"starts_at": "next tuesday"}),
    ("PATCH", "/calendar/cal1", {"title": None}),
    ("POST", "/insights/ins2/act", {"action": "maybe"}),
    ("POST", "/session", {"surface_id": "bad id with spaces", "surface": "ipad_app"}),
    ("POST", "/session", {"surface_id": "s1", "surface": "toaster"}),
]


async def test_refusals_on_the_hub_and_on_an_edge(tmp_path: Path) -> None:
    """Other tenant, another broker's lead, bad input, a second decision: refused with a reason
    (never a 500), and nothing written."""
    async with running_hub() as server, AsyncExitStack() as stack, \
            httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        junior, junior2, other_tenant = [await login(server, f"{who}.test") for who in (
            "junior_broker@t1", "junior2@t1", "sales_director@t2")]
        base = "/api/mobile-edge"

        async def status(method: str, path: str, headers: dict[str, str], body: Any = None
                         ) -> tuple[int, str]:
            r = await http.request(method, base + path, json=body, headers=headers)
            return r.status_code, r.json().get("error", "") if r.status_code >= 400 else ""

        for who in (junior2, other_tenant):  # neither sees the junior's lead or its records
            for method, path, body in [
                    ("GET", "/events?lead_id=l1", None), ("GET", "/memory?lead_id=l1", None),
                    ("POST", "/events", {"lead_id": "l1", "channel": "call"}),
                    ("POST", "/notes", {"lead_id": "l1", "text": "Mine now"}),
                    ("GET", "/insights/l1", None),
                    ("POST", "/insights/ins1/act", {"action": "dismiss"}),
                    ("PATCH", "/calendar/cal1", {"location": "Elsewhere"}),
                    ("DELETE", "/calendar/cal1", None)]:
                assert await status(method, path, who, body) == (404, "not_found"), path
        for method, path, body in BAD_BODIES:
            got = await status(method, path, junior, body)
            assert got[0] == 422, (method, path, body, got)
        assert await status("POST", "/insights/ins1/act", junior, {"action": "act"}) == (200, "")
        assert await status("POST", "/insights/ins1/act", junior, {"action": "dismiss"}) == (
            409, "already_decided")
        await http.post(base + "/session", headers=junior,
                        json={"surface_id": "shared-1", "surface": "webos"})
        assert await status("POST", "/session", junior2,
                            {"surface_id": "shared-1", "surface": "webos"}) == (409, "conflict")
        counts = await server.hub.db.pool.fetchrow(
            "SELECT (SELECT count(*) FROM mobile_comm_events) AS events, "
            "(SELECT count(*) FROM mobile_memory_facts) AS facts, "
            "(SELECT location FROM mobile_calendar_events WHERE id = 'cal1') AS location, "
            "(SELECT status FROM mobile_calendar_events WHERE id = 'cal1') AS status, "
            "(SELECT status FROM mobile_insights WHERE id = 'ins1') AS decided")
        assert dict(counts) == {"events": 0, "facts": 0, "location": "Aurelia Towers lobby",
                                "status": "scheduled", "decided": "acted"}

        # The same refusals on the junior's device, offline.
        async with device(stack, server, tmp_path / "ipad", JUNIOR.user_id) as a:
            await until(lambda: a.has("insights", "ins1"), what="seed on device")
            await until(lambda: _decided(a), what="decision on device")
            await a.offline()
            for method, path, body in BAD_BODIES:
                r = await a.http.request(method, f"/api/mobile-edge{path}", json=body)
                assert r.status_code == 422, (method, path, body, r.text)
            for method, path, body in [("GET", "/events?lead_id=nope", None),
                                       ("POST", "/notes", {"lead_id": "nope", "text": "x"}),
                                       ("GET", "/transcripts/nope", None),
                                       ("PATCH", "/calendar/nope", {"location": "x"})]:
                r = await a.http.request(method, f"/api/mobile-edge{path}", json=body)
                assert r.status_code == 404, (path, r.text)
            r = await a.http.post("/api/mobile-edge/insights/ins1/act", json={"action": "act"})
            assert (r.status_code, r.json()["error"]) == (409, "already_decided")
            assert await a.agent.replica.pending_count() == 0
            r = await a.http.get("/api/mobile-edge/events?lead_id=l1",
                                 headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401


async def _decided(d: Device) -> bool:
    return d.agent.replica.record("insights", "ins1").status == "acted"
