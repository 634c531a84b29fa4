"""The CRM REST routes end to end: tokens, tenant isolation, broker read scope, validated
writes that become CRDT updates in the log, paging, and soft-deleted records."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from core.identity import Principal, Role
from hub.server import HubServer
from hub.store import create_many
from schema import collection
from sync.record import RecordDoc
from tests.hubkit import login, running_hub

pytestmark = pytest.mark.anyio

DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
T2_DIRECTOR = Principal("t2", "t2-sales_director", Role.SALES_DIRECTOR)
JUNIOR, JUNIOR2, SENIOR = "t1-junior_broker", "t1-junior2", "t1-senior_broker"
ROUTES = {
    ("GET", "/api/crm/contacts"), ("POST", "/api/crm/contacts"),
    ("GET", "/api/crm/contacts/{person_id}"), ("GET", "/api/crm/client-360/{person_id}"),
    ("GET", "/api/crm/opportunities"), ("GET", "/api/crm/tasks"), ("POST", "/api/crm/tasks"),
    ("GET", "/api/crm/kanban"), ("GET", "/api/crm/qd/{person_id}"),
    ("GET", "/api/crm/client-data"), ("GET", "/api/crm/client-data/{person_id}"),
    ("PATCH", "/api/crm/client-data/{person_id}"),
    ("GET", "/api/crm/client-data/{person_id}/timeline"),
    ("GET", "/api/crm/client-data/{person_id}/tasks"),
    ("POST", "/api/crm/client-data/{person_id}/tasks"),
}
"""The CRM routes the WebOS relies on; the served set must contain them all."""

Rows = list[dict[str, Any]]
Write = tuple[str, str, dict[str, Any]]


def _lead(lid: str, person: str, owner: str, team: str, stage: str) -> Write:
    return ("leads", lid, {"tenant_id": "t1", "person_id": person, "owner_id": owner,
                           "team_id": team, "stage": stage, "last_qd": 70})


async def _seed(server: HubServer) -> None:
    """t1: p1 (only junior2's lead l2 and opportunity o1), p2 (junior's l1/o2, senior's l3), a
    deleted p3, interactions, QD, facts, tasks and a stage change of l2; t2: p9 with lead l9."""
    t1: list[Write] = [
        ("people", "p1", {"tenant_id": "t1", "full_name": "Zara Khan", "city": "Dubai",
                          "segment": "whale", "owner_id": JUNIOR2, "team_id": "south"}),
        ("people", "p2", {"tenant_id": "t1", "full_name": "Dev Shah", "city": "Pune",
                          "primary_phone": "+91 98200 11111", "owner_id": JUNIOR,
                          "team_id": "north"}),
        ("people", "p3", {"tenant_id": "t1", "full_name": "Asha Rao", "deleted": True}),
        _lead("l1", "p2", JUNIOR, "north", "QUALIFIED"),
        _lead("l2", "p1", JUNIOR2, "south", "NEGOTIATION"),
        _lead("l3", "p2", SENIOR, "north", "NEW"),
        ("opportunities", "o1", {"tenant_id": "t1", "person_id": "p1", "lead_id": "l2",
                                 "owner_id": JUNIOR2, "team_id": "south", "value": 9e7}),
        ("opportunities", "o2", {"tenant_id": "t1", "person_id": "p2", "lead_id": "l1",
                                 "owner_id": JUNIOR, "team_id": "north", "value": 2e7}),
        ("interactions", "i1", {"tenant_id": "t1", "person_id": "p1", "kind": "call",
                                "occurred_at": "2026-11-21T10:00:00Z", "summary": "Penthouse"}),
        ("qd_scores", "q1", {"tenant_id": "t1", "person_id": "p1", "score": 61,
                             "scored_at": "2026-11-19T10:00:00Z"}),
        ("qd_scores", "q2", {"tenant_id": "t1", "person_id": "p1", "score": 84,
                             "scored_at": "2026-11-20T10:00:00Z"}),
        ("facts", "f1", {"tenant_id": "t1", "person_id": "p1", "kind": "budget",
                         "value": "up to 10 Cr"}),
        ("tasks", "k1", {"tenant_id": "t1", "person_id": "p1", "title": "Send floor plans",
                         "due_at": "2026-11-23T09:00:00Z"}),
        ("tasks", "k2", {"tenant_id": "t1", "person_id": "p1", "title": "Old call",
                         "status": "DONE", "due_at": "2026-11-01T09:00:00Z"}),
        ("stage_history", "s1", {"tenant_id": "t1", "lead_id": "l2", "from_stage": "QUALIFIED",
                                 "to_stage": "NEGOTIATION", "changed_at": "2026-11-22T10:00:00Z"}),
    ]
    await create_many(server.hub.writer, DIRECTOR, t1)
    await create_many(server.hub.writer, T2_DIRECTOR, [
        ("people", "p9", {"tenant_id": "t2", "full_name": "Zara Other", "city": "Dubai"}),
        ("leads", "l9", {"tenant_id": "t2", "person_id": "p9", "owner_id": "t2-junior_broker",
                         "team_id": "north", "stage": "NEGOTIATION"}),
    ])


def _ids(rows: Rows) -> list[str]:
    return [r["id"] for r in rows]


async def test_every_crm_route_requires_a_valid_token() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        served = {(m.upper(), p) for p, ops in (await http.get("/openapi.json")).json()[
            "paths"].items() if p.startswith("/api/crm/") for m in ops}
        assert served >= ROUTES
        now = int(time.time())
        claims = {"sub": "t1-admin", "tid": "t1", "role": "ADMIN", "iat": now - 100,
                  "exp": now + 100}
        bad_tokens = {
            "expired": jwt.encode({**claims, "exp": now - 10}, server.hub.secret_key, "HS256"),
            "forged": jwt.encode(claims, "another-secret-that-is-long-enough-for-hs256", "HS256"),
            "unsigned": jwt.encode(claims, None, "none"),
            "ghost user": jwt.encode({**claims, "sub": "t1-nobody"}, server.hub.secret_key,
                                     "HS256"),
            "other tenant's user": jwt.encode({**claims, "tid": "t2"}, server.hub.secret_key,
                                              "HS256"),
            "garbage": "not-a-jwt",
        }
        valid = await login(server, "admin@t1.test")
        batch_id = (await http.post("/api/crm/imports", headers=valid, files={
            "file": ("c.csv", b"full_name\nAsha Rao\n", "text/csv")})).json()["batch_id"]
        for method, template in sorted(served):
            path = template.replace("{person_id}", "p1").replace("{batch_id}", batch_id)
            body = {"values": {}} if method != "GET" else None
            r = await http.request(method, path, json=body)
            assert r.status_code == 401, (method, path)
            assert r.headers["www-authenticate"] == "Bearer"
            for name, token in bad_tokens.items():
                r = await http.request(method, path, json=body,
                                       headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 401, (method, path, name)
            if method == "GET":
                assert (await http.get(path, headers=valid)).status_code == 200, path


async def test_read_scope_by_role_and_tenant() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        auth = {who: await login(server, f"{who}.test") for who in (
            "junior_broker@t1", "junior2@t1", "senior_broker@t1", "sales_director@t1",
            "sales_director@t2")}

        async def get(who: str, path: str, **params: object) -> Any:
            r = await http.get(path, headers=auth[who], params=params)
            assert r.status_code == 200, (who, path, r.text)
            return r.json()

        def kanban_ids(board: dict[str, Any]) -> dict[str, list[str]]:
            return {s: _ids(c["cards"]) for s, c in board["columns"].items() if c["count"]}

        # Leads and opportunities are owner-scoped: junior = own, senior = own + team, director
        # = all; a filter naming another broker's records cannot widen the scope.
        assert kanban_ids(await get("junior_broker@t1", "/api/crm/kanban")) == {
            "QUALIFIED": ["l1"]}
        assert kanban_ids(await get("senior_broker@t1", "/api/crm/kanban")) == {
            "QUALIFIED": ["l1"], "NEW": ["l3"]}
        assert kanban_ids(await get("sales_director@t1", "/api/crm/kanban")) == {
            "QUALIFIED": ["l1"], "NEW": ["l3"], "NEGOTIATION": ["l2"]}
        assert _ids(await get("junior_broker@t1", "/api/crm/opportunities")) == ["o2"]
        assert await get("junior_broker@t1", "/api/crm/opportunities", owner_id=JUNIOR2) == []
        assert _ids(await get("junior2@t1", "/api/crm/opportunities")) == ["o1"]
        assert _ids(await get("sales_director@t1", "/api/crm/opportunities")) == ["o1", "o2"]
        assert _ids(await get("sales_director@t1", "/api/crm/opportunities",
                              owner_id=JUNIOR)) == ["o2"]

        # Client 360 of a person whose only lead is another broker's: the person and the
        # tenant-wide facts are there, the lead and its opportunity are not.
        c360 = await get("junior_broker@t1", "/api/crm/client-360/p1")
        assert c360["person"]["full_name"] == "Zara Khan"
        assert (c360["leads"], c360["opportunities"]) == ([], [])
        assert (_ids(c360["interactions"]), _ids(c360["facts"])) == (["i1"], ["f1"])
        assert (_ids(c360["tasks"]), [q["score"] for q in c360["qd"]]) == (["k1"], [61, 84])
        c360 = await get("junior2@t1", "/api/crm/client-360/p1")
        assert (_ids(c360["leads"]), _ids(c360["opportunities"])) == (["l2"], ["o1"])
        c360 = await get("junior_broker@t1", "/api/crm/client-360/p2")
        assert (_ids(c360["leads"]), _ids(c360["opportunities"])) == (["l1"], ["o2"])
        assert sorted(_ids((await get("senior_broker@t1", "/api/crm/client-360/p2"))[
            "leads"])) == ["l1", "l3"]

        # The client data lens and the timeline follow the same scope (l2's stage change).
        lens = {p["id"]: _ids(p["leads"]) for p in await get("junior_broker@t1",
                                                             "/api/crm/client-data")}
        assert lens == {"p1": [], "p2": ["l1"]}
        timeline = "/api/crm/client-data/p1/timeline"
        assert [e["type"] for e in await get("junior_broker@t1", timeline)] == ["task", "call",
                                                                                 "task"]
        assert [e["type"] for e in await get("junior2@t1", timeline)] == ["task", "stage",
                                                                           "call", "task"]
        assert [q["score"] for q in await get("junior_broker@t1", "/api/crm/qd/p1")] == [61, 84]
        assert _ids(await get("junior_broker@t1", "/api/crm/client-data/p1/tasks")) == ["k2",
                                                                                        "k1"]
        assert _ids(await get("junior_broker@t1", "/api/crm/tasks", status="OPEN")) == ["k1"]

        # Tenants: t2's director sees only t2 rows, and every t1 id is a 404 for them.
        assert _ids(await get("sales_director@t2", "/api/crm/contacts", q="zara")) == ["p9"]
        assert _ids(await get("sales_director@t1", "/api/crm/contacts", q="zara")) == ["p1"]
        assert kanban_ids(await get("sales_director@t2", "/api/crm/kanban")) == {
            "NEGOTIATION": ["l9"]}
        assert _ids(await get("sales_director@t2", "/api/crm/client-data")) == ["p9"]
        for path in ("/api/crm/opportunities", "/api/crm/tasks"):
            assert await get("sales_director@t2", path) == []
        for path in ("contacts/p1", "client-360/p1", "qd/p1", "client-data/p1",
                     "client-data/p1/timeline", "client-data/p1/tasks"):
            r = await http.get(f"/api/crm/{path}", headers=auth["sales_director@t2"])
            assert r.status_code == 404, path
            assert "Zara" not in r.text
        r = await http.patch("/api/crm/client-data/p1", headers=auth["sales_director@t2"],
                             json={"values": {"city": "Oslo"}})
        assert r.status_code == 404
        assert (await get("sales_director@t1", "/api/crm/contacts/p1"))["city"] == "Dubai"


async def test_patch_client_data_validates_and_refuses() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        junior = await login(server, "junior_broker@t1.test")
        pool = server.hub.db.pool

        async def patch(person_id: str, values: dict[str, Any]) -> httpx.Response:
            return await http.patch(f"/api/crm/client-data/{person_id}", headers=junior,
                                    json={"values": values})

        r = await patch("p2", {"city": "Mumbai", "tags": ["hot"], "tenant_id": "t2"})
        assert r.status_code == 200
        assert (r.json()["city"], r.json()["tags"], r.json()["tenant_id"]) == (
            "Mumbai", ["hot"], "t1")
        lens = (await http.get("/api/crm/client-data/p2", headers=junior)).json()
        assert (lens["city"], lens["full_name"]) == ("Mumbai", "Dev Shah")

        for values, field in (({"full_name": ""}, "full_name"), ({"email": "x" * 300}, "email"),
                              ({"city": "Pune", "tags": "hot"}, "tags")):
            r = await patch("p2", values)
            assert r.status_code == 422, values
            assert any(p.startswith(f"{field}:") for p in r.json()["problems"]), r.text
        for values, field in (({"owner_id": JUNIOR2}, "owner_id"), ({"deleted": True}, "deleted")):
            r = await patch("p2", values)
            assert r.status_code == 422 and r.json()["problems"][0].startswith(f"{field}:")
        assert (await patch("p2", {"stage": "WON"})).status_code == 422
        # A client whose only lead is another broker's is not the junior's to edit (the senior
        # of that team may not either; its owner and the director may), and a lead's id is no
        # person at all.
        r = await patch("p1", {"city": "Abu Dhabi"})
        assert r.status_code == 403 and r.json()["error"] == "not_owner"
        for email, status in (("senior_broker@t1.test", 403), ("junior2@t1.test", 200),
                              ("sales_director@t1.test", 200)):
            r = await http.patch("/api/crm/client-data/p1", headers=await login(server, email),
                                 json={"values": {"segment": "vip"}})
            assert r.status_code == status, email
        assert (await patch("l2", {"stage": "WON"})).status_code == 404
        assert await pool.fetchval(
            "SELECT stage FROM crm_leads WHERE tenant_id = 't1' AND id = 'l2'") == "NEGOTIATION"
        assert (await patch("p3", {"city": "Goa"})).status_code == 404  # deleted
        assert (await patch("nobody", {"city": "Goa"})).status_code == 404
        assert await pool.fetchval(
            "SELECT city FROM crm_people WHERE tenant_id = 't1' AND id = 'p2'") == "Mumbai"
        assert await pool.fetchval(
            "SELECT count(*) FROM hub_updates WHERE tenant_id = 't1' AND guid = 'people/p2'"
        ) == 2  # the seed and the one accepted PATCH


async def test_rest_writes_are_crdt_updates_in_the_log() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        junior = await login(server, "junior_broker@t1.test")
        pool = server.hub.db.pool
        r = await http.post("/api/crm/contacts", headers=junior, json={"values": {
            "full_name": "Meera Iyer", "email": "meera@example.com", "tenant_id": "t2"}})
        assert r.status_code == 201
        person = r.json()
        assert uuid.UUID(person["id"]).version == 7
        assert (person["tenant_id"], person["owner_id"], person["team_id"]) == (
            "t1", JUNIOR, "north")
        guid = f"people/{person['id']}"
        r = await http.patch(f"/api/crm/client-data/{person['id']}", headers=junior,
                             json={"values": {"city": "Chennai", "notes": "Prefers calls"}})
        assert r.status_code == 200
        log = await pool.fetch("SELECT seq, data, user_id FROM hub_updates WHERE tenant_id = "
                               "'t1' AND guid = $1 ORDER BY seq", guid)
        assert [row["user_id"] for row in log] == [JUNIOR, JUNIOR]
        assert not await pool.fetchval("SELECT count(*) FROM hub_updates WHERE tenant_id = 't2' "
                                       "AND guid = $1", guid)
        replayed = RecordDoc(collection("people"), person["id"])
        for row in log:
            replayed.apply(bytes(row["data"]))
        state = await pool.fetchval("SELECT state FROM hub_documents WHERE tenant_id = 't1' AND "
                                    "guid = $1", guid)
        snapshot = RecordDoc(collection("people"), person["id"], state=bytes(state)).project()
        projected = await pool.fetchrow("SELECT * FROM crm_people WHERE tenant_id = 't1' AND "
                                        "id = $1", person["id"])
        assert snapshot == replayed.project()
        assert snapshot.model_dump(mode="json") == r.json()
        assert (projected["city"], projected["notes"], projected["email"]) == (
            "Chennai", "Prefers calls", "meera@example.com")

        r = await http.post("/api/crm/tasks", headers=junior, json={"values": {
            "title": "Site visit", "person_id": person["id"], "due_at": "2026-12-01T10:00:00Z"}})
        assert r.status_code == 201
        task = r.json()
        assert await pool.fetchval("SELECT count(*) FROM hub_updates WHERE tenant_id = 't1' AND "
                                   "guid = $1", f"tasks/{task['id']}") == 1
        for path in (f"client-data/{person['id']}/tasks", "tasks?status=OPEN"):
            assert task["id"] in _ids((await http.get(f"/api/crm/{path}", headers=junior)).json())
        c360 = (await http.get(f"/api/crm/client-360/{person['id']}", headers=junior)).json()
        assert _ids(c360["tasks"]) == [task["id"]]
        r = await http.post(f"/api/crm/client-data/{person['id']}/tasks", headers=junior,
                            json={"values": {"title": "Call", "person_id": "p1"}})
        assert r.status_code == 201 and r.json()["person_id"] == person["id"]
        assert (await http.post("/api/crm/client-data/p3/tasks", headers=junior,
                                json={"values": {"title": "Call"}})).status_code == 404
        assert person["created_at"] is not None
        r = await http.post("/api/crm/tasks", headers=junior, json={"values": {"title": ""}})
        assert r.status_code == 422 and any(p.startswith("title:") for p in r.json()["problems"])
        r = await http.post("/api/crm/contacts", headers=junior, json={"values": {"city": "X"}})
        assert r.status_code == 422
        assert any(p.startswith("full_name:") for p in r.json()["problems"])


async def test_paging_and_deleted_records() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await _seed(server)
        await create_many(server.hub.writer, DIRECTOR, [
            *[("people", f"pp{i:02}", {"tenant_id": "t1", "full_name": f"Paged {i:02}",
                                       "city": "Goa"}) for i in range(23)],
            *[("opportunities", f"op{i}", {"tenant_id": "t1", "person_id": "p2",
                                           "owner_id": JUNIOR, "team_id": "north",
                                           "value": 1e6 + i}) for i in range(7)],
            *[("tasks", f"tk{i}", {"tenant_id": "t1", "title": f"Task {i}"}) for i in range(7)],
            ("opportunities", "od", {"tenant_id": "t1", "person_id": "p2", "owner_id": JUNIOR,
                                     "deleted": True}),
            ("tasks", "kd", {"tenant_id": "t1", "title": "Gone", "deleted": True}),
        ])
        junior = await login(server, "junior_broker@t1.test")

        async def pages(path: str, size: int, count: int) -> list[list[str]]:
            out: list[list[str]] = []
            for offset in range(0, count + 1, size):
                r = await http.get(path, headers=junior, params={"limit": size, "offset": offset})
                assert r.status_code == 200
                out.append(_ids(r.json()))
            return out

        people = ["p2", *(f"pp{i:02}" for i in range(23)), "p1"]  # by name: Dev, Paged, Zara
        expected = {
            "/api/crm/contacts": people,
            "/api/crm/client-data": people,
            "/api/crm/opportunities": ["o2", *(f"op{i}" for i in reversed(range(7)))],
            "/api/crm/tasks": ["k2", "k1", *(f"tk{i}" for i in range(7))],
        }
        for path, ids in expected.items():
            got = await pages(path, 4, len(ids))
            assert [len(p) for p in got] == [4] * (len(ids) // 4) + [len(ids) % 4], path
            assert [i for page in got for i in page] == ids, path
        assert _ids((await http.get("/api/crm/contacts", headers=junior, params={
            "city": "Goa", "q": "paged 1", "limit": 3})).json()) == ["pp10", "pp11", "pp12"]
        assert _ids((await http.get("/api/crm/contacts", headers=junior, params={
            "q": "98200"})).json()) == ["p2"]
        for q in ("%", "_"):
            assert (await http.get("/api/crm/contacts", headers=junior, params={"q": q})
                    ).json() == []
        assert _ids((await http.get("/api/crm/contacts", headers=junior, params={
            "owner_id": JUNIOR2, "segment": "whale"})).json()) == ["p1"]
        r = await http.get("/api/crm/contacts", headers=junior, params={"limit": 200})
        assert r.status_code == 200 and len(r.json()) == len(people)
        for params in ({"limit": 0}, {"limit": 201}, {"offset": -1}):
            r = await http.get("/api/crm/contacts", headers=junior, params=params)
            assert r.status_code == 422, params
            assert re.search(r"limit|offset", r.text)

        for path in ("contacts/p3", "client-360/p3", "qd/p3", "client-data/p3",
                     "client-data/p3/timeline", "client-data/p3/tasks"):
            assert (await http.get(f"/api/crm/{path}", headers=junior)).status_code == 404, path
        await server.hub.writer.write(DIRECTOR, "people", "p2", {"deleted": True}, create=False)
        assert (await http.get("/api/crm/contacts/p2", headers=junior)).status_code == 404
        assert "p2" not in _ids((await http.get("/api/crm/contacts", headers=junior)).json())
