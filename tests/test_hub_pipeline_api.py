"""Leads and opportunities for the WebOS: lists, detail, edits, stage moves with their history,
reassignment; refusals by role and tenant; every write reaches a paired device and is audited."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from hub.server import HubServer
from hub.store import create_many
from tests.hubkit import login, pair_device, running_hub

pytestmark = pytest.mark.anyio


async def _seed(server: HubServer) -> None:
    director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
    await create_many(server.hub.writer, director, [
        ("people", "p1", {"tenant_id": "t1", "full_name": "Zara Khan"}),
        ("people", "p2", {"tenant_id": "t1", "full_name": "Dev Shah"}),
        ("leads", "l1", {"tenant_id": "t1", "person_id": "p1", "owner_id": "t1-junior_broker",
                         "team_id": "north", "stage": "QUALIFIED", "last_qd": 80,
                         "source": "web", "notes": "wants a sea view"}),
        ("leads", "l2", {"tenant_id": "t1", "person_id": "p2", "owner_id": "t1-junior2",
                         "team_id": "south", "stage": "NEW", "last_qd": 40}),
        ("leads", "l3", {"tenant_id": "t1", "person_id": "p2", "owner_id": "t1-junior_broker",
                         "team_id": "north", "stage": "NEW", "last_qd": 60}),
        ("opportunities", "o1", {"tenant_id": "t1", "person_id": "p1", "lead_id": "l1",
                                 "owner_id": "t1-junior_broker", "team_id": "north",
                                 "stage": "PROPOSAL", "value": 5e7}),
        ("opportunities", "o2", {"tenant_id": "t1", "person_id": "p1", "lead_id": "l1",
                                 "owner_id": "t1-junior_broker", "team_id": "north",
                                 "stage": "CLOSED_LOST"}),
    ])
    await create_many(server.hub.writer, Principal("t2", "t2-admin", Role.ADMIN), [
        ("leads", "l9", {"tenant_id": "t2", "person_id": "p9", "stage": "NEW"})])


async def _users(server: HubServer) -> dict[str, dict[str, str]]:
    return {name: await login(server, email) for name, email in (
        ("junior", "junior_broker@t1.test"), ("junior2", "junior2@t1.test"),
        ("senior", "senior_broker@t1.test"), ("director", "sales_director@t1.test"),
        ("admin", "admin@t1.test"), ("t2", "sales_director@t2.test"))}


async def _audit(server: HubServer, action: str) -> list[dict[str, Any]]:
    rows = await server.hub.db.pool.fetch(
        "SELECT * FROM hub_audit WHERE tenant_id = 't1' AND action = $1 ORDER BY audit_id",
        action)
    return [dict(r) for r in rows]


async def test_lists_filter_page_and_keep_to_scope() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        u = await _users(server)

        async def ids(who: str, **params: Any) -> tuple[list[str], int]:
            r = await http.get("/api/leads", params=params, headers=u[who])
            assert r.status_code == 200, r.text
            return [row["id"] for row in r.json()["items"]], r.json()["total"]

        assert await ids("director") == (["l1", "l2", "l3"], 3)
        assert await ids("junior") == (["l1", "l3"], 2)
        assert await ids("junior2") == (["l2"], 1)
        assert await ids("senior") == (["l1", "l3"], 2)  # team north
        assert await ids("t2") == (["l9"], 1)
        assert await ids("director", stage="NEW", sort="qd") == (["l3", "l2"], 2)
        assert await ids("director", q="zara") == (["l1"], 1)
        assert await ids("director", q="sea view") == (["l1"], 1)
        assert await ids("director", q="%") == ([], 0)  # a literal, not a wildcard
        assert await ids("director", min_qd=50, sort="qd") == (["l1", "l3"], 2)
        assert await ids("director", owner_id="t1-junior2") == (["l2"], 1)
        assert await ids("director", sort="qd", limit=1, offset=1) == (["l3"], 3)
        r = await http.get("/api/leads", params={"stage": "NOPE"}, headers=u["director"])
        assert r.status_code == 422

        r = await http.get("/api/leads/l1", headers=u["junior"])
        assert r.status_code == 200
        body = r.json()
        assert body["person"]["full_name"] == "Zara Khan"
        assert {o["id"] for o in body["opportunities"]} == {"o1", "o2"}
        for who, status in (("junior2", 404), ("t2", 404), ("senior", 200), ("admin", 200)):
            assert (await http.get("/api/leads/l1", headers=u[who])).status_code == status, who

        r = await http.get("/api/opportunities", params={"lead_id": "l1"}, headers=u["junior"])
        assert [o["id"] for o in r.json()["items"]] == ["o1", "o2"]
        assert (await http.get("/api/opportunities", headers=u["junior2"])).json()["total"] == 0
        assert (await http.get("/api/opportunities/o1", headers=u["junior2"])).status_code == 404
        assert (await http.get("/api/opportunities/o1", headers=u["t2"])).status_code == 404
        board = (await http.get("/api/kanban/board", headers=u["junior"])).json()
        assert board == (await http.get("/api/crm/kanban", headers=u["junior"])).json()
        assert board["columns"]["NEW"]["count"] == 1


async def test_stage_moves_write_history_reach_devices_and_are_audited() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        u = await _users(server)
        device = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 7001)
        await device.connect()
        try:
            await device.wait_for(lambda: "leads/l1" in device.docs)
            r = await http.post("/api/leads/l1/stage", json={"stage": "SITE_VISIT"},
                                headers=u["junior"])
            assert r.status_code == 200, r.text
            assert r.json()["stage"] == "SITE_VISIT"
            await device.wait_for(
                lambda: device.docs["leads/l1"].project().stage == "SITE_VISIT")
            detail = (await http.get("/api/leads/l1", headers=u["junior"])).json()
            (history,) = detail["stage_history"]
            assert (history["from_stage"], history["to_stage"], history["changed_by"]) == (
                "QUALIFIED", "SITE_VISIT", "t1-junior_broker")
            await device.wait_for(lambda: f"stage_history/{history['id']}" in device.docs)
        finally:
            await device.close()

        # A stage the junior's role may not set: a 403 the WebOS shows, nothing written.
        r = await http.post("/api/leads/l1/stage", json={"stage": "WON"}, headers=u["junior"])
        assert r.status_code == 403
        assert r.json()["error"] == "lead_stage_forbidden"
        assert "SALES_DIRECTOR" in r.json()["detail"]
        # Another broker's lead is not there for a junior; another tenant's neither.
        assert (await http.post("/api/leads/l1/stage", json={"stage": "LOST"},
                                headers=u["junior2"])).status_code == 404
        assert (await http.post("/api/leads/l1/stage", json={"stage": "LOST"},
                                headers=u["t2"])).status_code == 404
        assert (await http.post("/api/leads/l1/stage", json={"stage": "SOLD"},
                                headers=u["director"])).status_code == 422
        r = await http.post("/api/leads/l1/stage", json={"stage": "WON"},
                            headers=u["director"])
        assert r.status_code == 200
        # The same stage again changes nothing and writes no history.
        r = await http.post("/api/leads/l1/stage", json={"stage": "WON"},
                            headers=u["director"])
        assert r.status_code == 200
        history = (await http.get("/api/leads/l1", headers=u["junior"])).json()["stage_history"]
        assert [(h["from_stage"], h["to_stage"]) for h in history] == [
            ("QUALIFIED", "SITE_VISIT"), ("SITE_VISIT", "WON")]
        # A won lead stays won for a broker.
        r = await http.patch("/api/leads/l1", json={"values": {"stage": "LOST"}},
                             headers=u["junior"])
        assert (r.status_code, r.json()["error"]) == (403, "lead_stage_forbidden")

        moves = await _audit(server, "lead.stage")
        assert [(m["user_id"], m["detail"]["from"], m["detail"]["to"]) for m in moves] == [
            ("t1-junior_broker", "QUALIFIED", "SITE_VISIT"),
            ("t1-sales_director", "SITE_VISIT", "WON")]
        assert all(m["guid"] == "leads/l1" and m["seq"] for m in moves)
        refused = await _audit(server, "lead.stage.refused")
        assert [r["detail"]["reason"] for r in refused] == ["lead_stage_forbidden"] * 2


async def test_edits_and_manager_only_fields() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        u = await _users(server)
        r = await http.patch("/api/leads/l1", json={"values": {"notes": "call after 6",
                                                               "last_qd": 90}},
                             headers=u["junior"])
        assert r.status_code == 200, r.text
        assert (r.json()["notes"], r.json()["last_qd"]) == ("call after 6", 90)
        for locked in ({"owner_id": "t1-junior2"}, {"team_id": "south"}, {"deleted": True},
                       {"tenant_id": "t2"}):
            r = await http.patch("/api/leads/l1", json={"values": locked}, headers=u["admin"])
            assert r.status_code == 422, locked
        assert "reassign" in r.json()["detail"]
        r = await http.patch("/api/leads/l1", json={"values": {"last_qd": 500}},
                             headers=u["junior"])
        assert r.status_code == 422
        r = await http.patch("/api/leads/l1", json={"values": {"no_such": 1}},
                             headers=u["junior"])
        assert r.status_code == 422
        assert (await http.patch("/api/leads/l1", json={"values": {}},
                                 headers=u["junior"])).status_code == 422
        assert (await http.patch("/api/leads/l1", json={"values": {"notes": "x"}},
                                 headers=u["junior2"])).status_code == 404

        # An opportunity: brokers edit notes; stage, value and probability are managers'.
        r = await http.patch("/api/opportunities/o1", json={"values": {"notes": "firm"}},
                             headers=u["junior"])
        assert r.status_code == 200
        for field, value in (("value", 6e7), ("probability", 0.5), ("stage", "BOOKING")):
            r = await http.patch("/api/opportunities/o1", json={"values": {field: value}},
                                 headers=u["junior"])
            assert (r.status_code, r.json()["error"]) == (403, "manager_only_field"), field
            assert f"opportunities.{field}" in r.json()["detail"]
        r = await http.post("/api/opportunities/o1/stage", json={"stage": "BOOKING"},
                            headers=u["senior"])
        assert (r.status_code, r.json()["error"]) == (403, "manager_only_field")
        r = await http.patch("/api/opportunities/o1", json={"values": {
            "value": 6e7, "probability": 0.7, "stage": "NEGOTIATION"}}, headers=u["director"])
        assert r.status_code == 200, r.text
        assert (r.json()["value"], r.json()["stage"]) == (6e7, "NEGOTIATION")
        r = await http.post("/api/opportunities/o1/stage", json={"stage": "BOOKING"},
                            headers=u["admin"])
        assert r.status_code == 200
        detail = (await http.get("/api/opportunities/o1", headers=u["junior"])).json()
        assert [(h["from_stage"], h["to_stage"], h["lead_id"]) for h in
                detail["stage_history"]] == [("PROPOSAL", "NEGOTIATION", "l1"),
                                             ("NEGOTIATION", "BOOKING", "l1")]
        edits = await _audit(server, "lead.edit")
        assert edits[0]["detail"] == {"fields": ["last_qd", "notes"]}
        assert len(await _audit(server, "opportunity.stage")) == 2
        assert len(await _audit(server, "opportunity.edit.refused")) == 2  # value, probability
        assert len(await _audit(server, "opportunity.stage.refused")) == 2


async def test_reassign_is_for_managers_and_moves_open_opportunities() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        u = await _users(server)
        body = {"owner_id": "t1-junior2"}
        for who, status, error in (("junior", 403, "reassign_forbidden"),
                                   ("senior", 403, "reassign_forbidden"),
                                   ("junior2", 404, "not_found"), ("t2", 404, "not_found")):
            r = await http.post("/api/leads/l1/reassign", json=body, headers=u[who])
            assert (r.status_code, r.json()["error"]) == (status, error), who
        r = await http.post("/api/leads/l1/reassign", json={"owner_id": "t2-junior_broker"},
                            headers=u["director"])
        assert r.status_code == 422  # not a user of this tenant
        r = await http.post("/api/leads/l1/reassign", json=body, headers=u["director"])
        assert r.status_code == 200, r.text
        moved = r.json()
        assert (moved["lead"]["owner_id"], moved["lead"]["team_id"]) == ("t1-junior2", "south")
        assert [o["id"] for o in moved["opportunities"]] == ["o1"]  # o2 is closed: stays
        assert (await http.get("/api/leads/l1", headers=u["junior2"])).status_code == 200
        assert (await http.get("/api/leads/l1", headers=u["junior"])).status_code == 404
        assert (await http.get("/api/opportunities/o1", headers=u["junior2"])).status_code == 200
        (entry,) = await _audit(server, "lead.reassign")
        assert entry["user_id"] == "t1-sales_director"
        assert entry["target"] == "t1-junior2"
        assert entry["detail"]["from"] == {"owner_id": "t1-junior_broker", "team_id": "north"}
        assert entry["detail"]["opportunities"] == ["o1"]
        assert len(await _audit(server, "lead.reassign.refused")) == 2
