"""Holds on units, end to end: a hub on PostgreSQL and two paired edges whose brokers hold the
same unit while offline. After they reconnect exactly one hold stands everywhere, the other
broker sees the hub's refusal with its reason, and nothing else that broker wrote is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from hub.server import HubServer
from hub.store import create_many
from tests.hubkit import login, running_hub
from tests.reliability.kit import paired, until

pytestmark = pytest.mark.anyio
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
SENIOR, JUNIOR = "t1-senior_broker", "t1-junior_broker"


async def seed_inventory(server: HubServer) -> None:
    base = {"tenant_id": "t1", "owner_id": DIRECTOR.user_id}
    await create_many(server.hub.writer, DIRECTOR, [
        ("projects", "pr1", {**base, "name": "Marina Heights", "city": "Mumbai"}),
        ("towers", "tw1", {**base, "project_id": "pr1", "name": "Tower A", "floors": 40}),
        *[("units", f"u{n}", {**base, "project_id": "pr1", "tower_id": "tw1",
                              "unit_no": f"A-{1200 + n}", "configuration": "3BHK",
                              "floor": 12, "area_sqft": 1450, "price": 3.2e7})
          for n in (1, 2, 3)],
    ])


@asynccontextmanager
async def local_api(agent: EdgeAgent) -> AsyncIterator[httpx.AsyncClient]:
    """The device's local API, as the iPad app calls it."""
    transport = httpx.ASGITransport(app=create_local_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge",
                                 headers={"Authorization": f"Bearer {agent.token}"}) as http:
        yield http


async def _has(agent: EdgeAgent, sql: str, *params: Any) -> bool:
    return bool(await agent.replica.query(sql, params))


async def _drained(agent: EdgeAgent) -> bool:
    return bool(agent.sync and agent.sync.online and await agent.replica.pending_count() == 0)


async def test_two_brokers_hold_one_unit_offline_and_exactly_one_hold_wins(tmp_path: Path
                                                                          ) -> None:
    async with running_hub() as server:
        await seed_inventory(server)
        settings = {"senior": await paired(server, tmp_path / "senior", SENIOR),
                    "junior": await paired(server, tmp_path / "junior", JUNIOR)}
        async with EdgeAgent(settings["senior"]) as a, EdgeAgent(settings["junior"]) as b:
            for edge in (a, b):  # both devices have the inventory before going offline
                await until(lambda e=edge: _has(e, "SELECT 1 FROM temp.inventory_units "
                                                   "WHERE id = 'u3'"), what="inventory pulled")

        # Offline: both brokers hold A-1201; the junior also holds A-1202 and records a
        # client and a lead.
        offline: dict[str, Any] = {}
        for who in ("senior", "junior"):
            async with EdgeAgent(settings[who], sync=False) as edge, local_api(edge) as http:
                r = await http.post("/api/inventory/properties/u1/hold",
                                    json={"note": f"{who}'s client"})
                assert r.status_code == 201, r.text
                assert r.json()["status"] == "HELD"
                assert r.json()["hold"]["holder_id"] == edge.pairing.user_id
                again = await http.post("/api/inventory/properties/u1/hold", json={"hours": 0})
                assert again.status_code == 422  # a hold lasts at least an hour
                if who == "junior":
                    assert (await http.post("/api/inventory/properties/u2/hold",
                                            json={})).status_code == 201
                    person = await edge.write("people", None, {"full_name": "Asha Rao"})
                    lead = await edge.write("leads", None, {"person_id": person.id,
                                                            "stage": "SITE_VISIT"})
                    offline.update(person=person.id, lead=lead.id)
                    await edge.write("opportunities", None, {
                        "person_id": person.id, "lead_id": lead.id, "unit_id": "u2"})
                    await _pipeline_served_offline(http, person.id, lead.id)
                    await _every_new_route_needs_the_token(edge)

        # Both reconnect at once: the hub commits one hold of A-1201 and refuses the other.
        async with EdgeAgent(settings["senior"]) as a, EdgeAgent(settings["junior"]) as b, \
                local_api(a) as http_a, local_api(b) as http_b:
            edges = {SENIOR: (a, http_a), JUNIOR: (b, http_b)}
            for edge in (a, b):
                await until(lambda e=edge: _drained(e), timeout=60, what="outbox drained")
            hub_hold = await server.hub.db.pool.fetchrow(
                "SELECT holder_id, claims FROM inventory_unit_holds WHERE tenant_id = 't1' AND "
                "id = 'u1'")
            winner = hub_hold["holder_id"]
            loser = JUNIOR if winner == SENIOR else SENIOR
            assert hub_hold["claims"] == [winner]

            async def settled() -> bool:
                views = [(await http.get("/api/inventory/properties/u1")).json()
                         for _, http in edges.values()]
                return all(v["hold"] and v["hold"]["holder_id"] == winner
                           and not v["contested"] for v in views)

            await until(settled, timeout=30, what="one hold everywhere")

            refusals = (await edges[loser][1].get("/api/inventory/hold-refusals")).json()
            assert [(r["unit_id"], r["reason"]) for r in refusals] == [("u1", "unit_held")]
            assert winner in refusals[0]["message"]
            assert refusals[0]["unit_no"] == "A-1201"
            assert loser in refusals[0]["fields"]["claims"]  # what the broker had tried
            assert (await edges[winner][1].get("/api/inventory/hold-refusals")).json() == []

            # Nothing else the junior wrote offline is lost: the other hold, the client, the
            # lead, on the hub and on the senior's device.
            rows = await server.hub.db.pool.fetch(
                "SELECT id, holder_id FROM inventory_unit_holds WHERE tenant_id = 't1' "
                "ORDER BY id")
            assert [(r["id"], r["holder_id"]) for r in rows] == [("u1", winner), ("u2", JUNIOR)]
            assert await server.hub.db.pool.fetchval(
                "SELECT stage FROM crm_leads WHERE id = $1", offline["lead"]) == "SITE_VISIT"
            assert await server.hub.db.pool.fetchval(
                "SELECT unit_id FROM crm_opportunities WHERE person_id = $1",
                offline["person"]) == "u2"
            await until(lambda: _has(a, "SELECT 1 FROM temp.crm_people WHERE id = ?",
                                     offline["person"]), what="the junior's client reached a")
            held = (await http_a.get("/api/inventory/properties", params={"status": "HELD"}
                                     )).json()
            assert sorted((u["id"], u["hold"]["holder_id"]) for u in held) == [
                ("u1", winner), ("u2", JUNIOR)]

            # The loser cannot take the unit now; once the winner releases it, they can.
            taken = await edges[loser][1].post("/api/inventory/properties/u1/hold", json={})
            assert (taken.status_code, taken.json()["error"]) == (409, "unit_held")
            released = await edges[winner][1].delete("/api/inventory/properties/u1/hold")
            assert released.json()["status"] == "AVAILABLE"
            await until(lambda: _has(edges[loser][0], "SELECT 1 FROM temp.inventory_unit_holds "
                                     "WHERE id = 'u1' AND holder_id IS NULL"),
                        what="the release reached the loser")
            assert (await edges[loser][1].post("/api/inventory/properties/u1/hold",
                                               json={})).status_code == 201
            await until(lambda: _drained(edges[loser][0]), timeout=30, what="re-hold pushed")
            assert await server.hub.db.pool.fetchval(
                "SELECT holder_id FROM inventory_unit_holds WHERE id = 'u1'") == loser


async def _pipeline_served_offline(http: httpx.AsyncClient, person_id: str, lead_id: str
                                   ) -> None:
    """The broker's pipeline from the device alone: leads, the board, opportunities."""
    leads = (await http.get("/api/crm/leads")).json()
    assert [(x["id"], x["person_name"], x["stage"]) for x in leads] == [
        (lead_id, "Asha Rao", "SITE_VISIT")]
    assert (await http.get("/api/crm/leads", params={"stage": "WON"})).json() == []
    assert (await http.get("/api/crm/leads", params={"stage": "BOGUS"})).status_code == 422
    board = (await http.get("/api/crm/kanban")).json()["columns"]
    assert list(board) == ["NEW", "CONTACTED", "QUALIFIED", "SITE_VISIT", "NEGOTIATION", "WON",
                           "LOST"]
    assert board["SITE_VISIT"]["count"] == 1 and board["NEW"] == {"count": 0, "cards": []}
    opportunities = (await http.get("/api/crm/opportunities")).json()
    assert [(o["person_id"], o["unit_id"], o["stage"]) for o in opportunities] == [
        (person_id, "u2", "PROSPECTING")]
    units = (await http.get("/api/inventory/properties", params={"project_id": "pr1"})).json()
    assert [(u["unit_no"], u["status"]) for u in units] == [
        ("A-1201", "HELD"), ("A-1202", "HELD"), ("A-1203", "AVAILABLE")]
    assert (await http.get("/api/inventory/towers")).json()[0]["name"] == "Tower A"
    assert (await http.get("/api/inventory/properties/nope")).status_code == 404
    assert (await http.delete("/api/inventory/properties/u3/hold")).status_code == 409


async def _every_new_route_needs_the_token(agent: EdgeAgent) -> None:
    app = create_local_app(agent)
    paths = [(method.upper(), path) for path, ops in app.openapi()["paths"].items()
             for method in ops
             if path.startswith(("/api/inventory", "/api/crm/kanban", "/api/crm/opportunities"))
             or (path, method) == ("/api/crm/leads", "get")]
    assert len(paths) >= 12
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://edge") as http:
        for method, path in paths:
            r = await http.request(method, path.replace("{property_id}", "u1"),
                                   headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401, (method, path)


async def test_hub_holds_over_rest_refuse_a_second_holder_and_a_foreign_release() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await seed_inventory(server)
        senior, junior, director = await asyncio.gather(
            login(server, "senior_broker@t1.test"), login(server, "junior_broker@t1.test"),
            login(server, "sales_director@t1.test"))
        r = await http.post("/api/inventory/properties/u1/hold", json={"hours": 24},
                            headers=senior)
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["hold"]["holder_id"]) == ("HELD", SENIOR)
        r = await http.post("/api/inventory/properties/u1/hold", json={}, headers=junior)
        assert (r.status_code, r.json()["error"]) == (409, "unit_held")
        assert SENIOR in r.json()["detail"]
        r = await http.delete("/api/inventory/properties/u1/hold", headers=junior)
        assert (r.status_code, r.json()["error"]) == (403, "unit_held")
        r = await http.delete("/api/inventory/properties/u3/hold", headers=junior)
        assert r.status_code == 404
        r = await http.post("/api/inventory/properties/u1/hold", json={"hours": 10_000},
                            headers=junior)
        assert r.status_code == 422
        r = await http.get("/api/inventory/holds", headers=junior)
        assert [(h["id"], h["holder_id"]) for h in r.json()] == [("u1", SENIOR)]
        # A sold unit cannot be held; a director releases anyone's hold.
        r = await http.patch("/api/inventory/properties/u2", json={"values": {"status": "SOLD"}},
                             headers=director)
        assert r.status_code == 200, r.text
        r = await http.post("/api/inventory/properties/u2/hold", json={}, headers=junior)
        assert (r.status_code, r.json()["error"]) == (409, "unit_not_available")
        r = await http.delete("/api/inventory/properties/u1/hold", headers=director)
        assert (r.status_code, r.json()["status"], r.json()["hold"]) == (200, "AVAILABLE", None)
        r = await http.post("/api/inventory/properties/u1/hold", json={}, headers=junior)
        assert r.status_code == 201
        by_status = {status: [u["id"] for u in (await http.get(
            "/api/inventory/properties", params={"status": status}, headers=senior)).json()]
            for status in ("HELD", "AVAILABLE", "SOLD")}
        assert by_status == {"HELD": ["u1"], "AVAILABLE": ["u3"], "SOLD": ["u2"]}
        # Brokers do not change inventory; media are references a director attaches.
        r = await http.patch("/api/inventory/properties/u3", json={"values": {"facing": "sea"}},
                             headers=junior)
        assert (r.status_code, r.json()["error"]) == (403, "manager_only")
        r = await http.post("/api/inventory/properties/u3/media", headers=director, json={
            "uri": "https://cdn.example.com/u3/plan.pdf", "kind": "floor_plan"})
        assert r.status_code == 201, r.text
        media_id = r.json()["id"]
        r = await http.get("/api/inventory/properties/u3", headers=junior)
        assert [m["uri"] for m in r.json()["media"]] == ["https://cdn.example.com/u3/plan.pdf"]
        r = await http.post("/api/inventory/properties/u3/media", headers=director,
                            json={"uri": "x", "kind": "hologram"})
        assert r.status_code == 422
        r = await http.delete(f"/api/inventory/media/{media_id}", headers=junior)
        assert r.status_code == 403
        r = await http.delete(f"/api/inventory/media/{media_id}", headers=director)
        assert r.status_code == 200
        assert (await http.get("/api/inventory/properties/u3/media", headers=junior)
                ).json() == []
        # Bad input is refused with a reason, never a 500.
        for method, path, body in (
                ("POST", "/api/inventory/properties", {"values": {"project_id": "pr1"}}),
                ("POST", "/api/inventory/properties", {"values": {
                    "project_id": "pr1", "unit_no": "X", "configuration": "2BHK",
                    "price": -1}}),
                ("POST", "/api/inventory/properties", {"values": {
                    "project_id": "pr1", "unit_no": "X", "configuration": "2BHK",
                    "status": "RESERVED"}}),
                ("PATCH", "/api/inventory/properties/u3", {"values": {"floor": "high"}}),
                ("PATCH", "/api/inventory/properties/u3", {"nothing": 1}),
                ("POST", "/api/inventory/properties/u3/hold", {"hours": "two days"}),
                ("POST", "/api/inventory/properties/u3/media", {"uri": ""}),
                ("GET", "/api/inventory/properties?limit=0", None),
                ("POST", "/api/inventory/towers", {"values": {"name": "No project"}})):
            r = await http.request(method, path, json=body, headers=director)
            assert r.status_code == 422, (path, body, r.text)
        for path in ("/api/inventory/properties/nope", "/api/inventory/properties/nope/media"):
            assert (await http.get(path, headers=director)).status_code == 404
        r = await http.patch("/api/inventory/properties/nope", json={"values": {}},
                             headers=director)
        assert r.status_code == 404
