"""The hub's CRM REST API: every route, with its role checks and tenant scoping."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from core.identity import Principal, Role
from hub.server import HubServer
from schema import collection
from sync.record import RecordDoc
from tests.hubkit import login, running_hub

pytestmark = pytest.mark.anyio


async def _seed(server: HubServer) -> dict[str, str]:
    """Two brokers' leads in t1 (one each), a person, a task, a QD score, and t2 data."""
    w = server.hub.writer
    director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
    await w.write(director, "people", "p1", {"tenant_id": "t1", "full_name": "Zara Khan",
                                             "city": "Dubai", "segment": "whale"}, create=True)
    await w.write(director, "people", "p2", {"tenant_id": "t1", "full_name": "Dev Shah",
                                             "city": "Pune"}, create=True)
    for lid, owner, team in (("l1", "t1-junior_broker", "north"), ("l2", "t1-junior2", "south")):
        await w.write(director, "leads", lid, {"tenant_id": "t1", "person_id": "p1",
                                               "owner_id": owner, "team_id": team,
                                               "stage": "QUALIFIED"}, create=True)
    await w.write(director, "opportunities", "o1", {
        "tenant_id": "t1", "person_id": "p1", "lead_id": "l2", "owner_id": "t1-junior2",
        "team_id": "south", "stage": "NEGOTIATION", "value": 9e7}, create=True)
    await w.write(director, "qd_scores", "q1", {"tenant_id": "t1", "person_id": "p1",
                                                "score": 84, "scored_at": "2026-11-20T10:00:00Z"},
                  create=True)
    await w.write(director, "interactions", "i1", {
        "tenant_id": "t1", "person_id": "p1", "kind": "call",
        "occurred_at": "2026-11-21T10:00:00Z", "summary": "Discussed the penthouse"},
        create=True)
    await w.write(director, "stage_history", "s1", {
        "tenant_id": "t1", "lead_id": "l1", "to_stage": "QUALIFIED",
        "changed_at": "2026-11-22T10:00:00Z"}, create=True)
    other = Principal("t2", "t2-sales_director", Role.SALES_DIRECTOR)
    await w.write(other, "people", "p9", {"tenant_id": "t2", "full_name": "Zara Other"},
                  create=True)
    return {role: await _auth(server, role) for role in (
        "junior_broker@t1.test", "junior2@t1.test", "senior_broker@t1.test",
        "sales_director@t1.test", "sales_director@t2.test")}


async def _auth(server: HubServer, email: str) -> str:
    return (await login(server, email))["Authorization"]


async def test_every_crm_route_with_scope_and_roles() -> None:
    async with running_hub() as server:
        tokens = await _seed(server)
        junior, junior2 = tokens["junior_broker@t1.test"], tokens["junior2@t1.test"]
        director, other = tokens["sales_director@t1.test"], tokens["sales_director@t2.test"]
        async with httpx.AsyncClient(base_url=server.url) as http:
            async def get(path: str, token: str, **params: object) -> httpx.Response:
                return await http.get(path, headers={"Authorization": token}, params=params)

            assert (await http.get("/api/crm/contacts")).status_code == 401
            found = (await get("/api/crm/contacts", junior, q="zara")).json()
            assert [p["id"] for p in found] == ["p1"]  # never t2's Zara
            assert [p["id"] for p in (await get("/api/crm/contacts", other, q="zara")).json()
                    ] == ["p9"]
            page = (await get("/api/crm/contacts", director, limit=1, offset=1)).json()
            assert [p["id"] for p in page] == ["p1"]  # ordered by name: Dev, Zara
            assert (await get("/api/crm/contacts/p1", other)).status_code == 404
            assert (await get("/api/crm/contacts/p1", junior)).json()["city"] == "Dubai"

            c360 = (await get("/api/crm/client-360/p1", junior)).json()
            assert [ld["id"] for ld in c360["leads"]] == ["l1"]
            assert c360["opportunities"] == []
            assert c360["qd"][0]["score"] == 84
            c360 = (await get("/api/crm/client-360/p1", director)).json()
            assert sorted(ld["id"] for ld in c360["leads"]) == ["l1", "l2"]

            kanban = (await get("/api/crm/kanban", junior2)).json()["columns"]
            assert kanban["QUALIFIED"]["count"] == 1
            assert kanban["QUALIFIED"]["cards"][0]["id"] == "l2"
            assert (await get("/api/crm/kanban", director)).json()["columns"]["QUALIFIED"][
                "count"] == 2
            assert (await get("/api/crm/opportunities", junior)).json() == []
            assert [o["id"] for o in (await get("/api/crm/opportunities", junior2)).json()] == [
                "o1"]
            assert [q["score"] for q in (await get("/api/crm/qd/p1", junior)).json()] == [84]

            r = await http.post("/api/crm/tasks", headers={"Authorization": junior},
                                json={"values": {"title": "Call back", "person_id": "p1",
                                                 "due_at": "2026-11-30T09:00:00Z"}})
            assert r.status_code == 201 and r.json()["tenant_id"] == "t1"
            tasks = (await get("/api/crm/tasks", junior, person_id="p1")).json()
            assert [t["title"] for t in tasks] == ["Call back"]
            assert (await get("/api/crm/client-data/p1/tasks", director)).json()[0][
                "title"] == "Call back"

            lens = (await get("/api/crm/client-data", junior)).json()
            zara = next(p for p in lens if p["id"] == "p1")
            assert [ld["id"] for ld in zara["leads"]] == ["l1"]
            assert (await get("/api/crm/client-data/p1", junior)).json()["full_name"] == \
                "Zara Khan"
            timeline = (await get("/api/crm/client-data/p1/timeline", director)).json()
            assert [e["type"] for e in timeline] == ["task", "stage", "call"]

            patch = await http.patch("/api/crm/client-data/p1", headers={"Authorization": junior},
                                     json={"values": {"city": "London"}})
            assert patch.status_code == 200 and patch.json()["city"] == "London"
            bad = await http.patch("/api/crm/client-data/p1", headers={"Authorization": junior},
                                   json={"values": {"full_name": ""}})
            assert bad.status_code == 422 and "full_name" in bad.text
            cross = await http.patch("/api/crm/client-data/p1", headers={"Authorization": other},
                                     json={"values": {"city": "Oslo"}})
            assert cross.status_code == 404

            created = await http.post("/api/crm/contacts", headers={"Authorization": junior},
                                      json={"values": {"full_name": "New Lead Person",
                                                       "tenant_id": "t2"}})
            assert created.status_code == 201 and created.json()["tenant_id"] == "t1"

        # REST writes are CRDT updates in the log; the document projects to the same row.
        pool = server.hub.db.pool
        state = await pool.fetchval(
            "SELECT state FROM hub_documents WHERE tenant_id = 't1' AND guid = 'people/p1'")
        assert RecordDoc(collection("people"), "p1", state=state).project().city == "London"
        assert await pool.fetchval("SELECT count(*) FROM hub_updates WHERE guid = 'people/p1'"
                                   ) == 2


async def test_expired_and_forged_tokens_are_refused() -> None:
    async with running_hub() as server:
        secret = server.hub.secret_key
        now = int(time.time())
        claims = {"sub": "t1-admin", "tid": "t1", "role": "ADMIN", "ver": 0, "iat": now - 100,
                  "exp": now - 10}
        expired = jwt.encode(claims, secret, algorithm="HS256")
        forged = jwt.encode({**claims, "exp": now + 100},
                            "not-the-secret-but-long-enough-for-hs256", algorithm="HS256")
        async with httpx.AsyncClient(base_url=server.url) as http:
            for token, code in ((expired, "token_expired"), (forged, "token_invalid")):
                r = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 401 and r.json()["error"] == code
            ok = await http.get("/api/auth/me", headers=await login(server, "admin@t1.test"))
            assert ok.json()["role"] == "ADMIN"
            users = await http.get("/api/auth/users",
                                   headers=await login(server, "junior_broker@t1.test"))
            assert users.status_code == 403
            users = await http.get("/api/auth/users",
                                   headers=await login(server, "sales_director@t1.test"))
            assert {u["tenant_id"] for u in users.json()} == {"t1"}
            admin = await login(server, "admin@t1.test")
            health = await http.get("/api/admin-surface/health", headers=admin)
            assert health.status_code == 200 and health.json()["database"].startswith("Postgre")
            installs = await http.get("/api/admin-surface/installs", headers=admin)
            assert installs.status_code == 200 and installs.json() == []
            assert (await http.get("/api/admin-surface/installs", headers=await login(
                server, "senior_broker@t1.test"))).status_code == 403
            assert (await http.get("/health")).json() == {"status": "ok"}
            assert (await http.get("/docs")).status_code == 200
