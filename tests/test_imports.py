"""Import batches on a running hub: inventory CSVs written whole or refused whole, and CRM
CSVs that become proposals (create, merge, conflict), are reviewed and committed together."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from hub.store import create_many
from tests.hubkit import login, running_hub

pytestmark = pytest.mark.anyio
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)

GOOD_UNITS = """project,tower,unit_no,configuration,floor,area_sqft,price,status,facing
Marina Heights,Tower A,A-1201,3BHK,12,1450,32000000,available,sea
Marina Heights,Tower A,A-1202,2BHK,12,1050,21500000,SOLD,
Marina Heights,Tower B,B-0401,4BHK,4,2100,51000000,,garden
Palm Grove,,V-07,Villa,,3800,98000000,BOOKED,
"""
BAD_UNITS = """project,tower,unit_no,configuration,floor,area_sqft,price
Sky Gardens,North,N-101,2BHK,1,980,15000000
Sky Gardens,North,N-102,2BHK,one,980,15000000
Sky Gardens,North,N-101,2BHK,1,980,-5
Sky Gardens,North,,3BHK,2,1200,19000000
"""


async def _upload(http: httpx.AsyncClient, path: str, text: str | bytes, headers: dict[str, str],
                  **params: Any) -> httpx.Response:
    data = text.encode() if isinstance(text, str) else text
    return await http.post(path, files={"file": ("sheet.csv", data, "text/csv")},
                           params=params, headers=headers)


async def _count(server: Any, table: str) -> int:
    return int(await server.hub.db.pool.fetchval(
        f"SELECT count(*) FROM {table} WHERE tenant_id = 't1'"))


async def test_inventory_batches_are_written_whole_or_refused_whole() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        director = await login(server, "sales_director@t1.test")
        path = "/api/inventory/import-batches"

        r = await _upload(http, path, GOOD_UNITS, director, dry_run="true")
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["errors"]) == ("validated", [])
        assert await _count(server, "inventory_units") == 0  # a dry run writes nothing

        r = await _upload(http, path, GOOD_UNITS, director)
        batch = r.json()
        assert (batch["status"], batch["row_count"], batch["summary"]["units"]) == (
            "committed", 4, 4)
        assert sorted(batch["summary"]["new_projects"]) == ["Marina Heights", "Palm Grove"]
        units = {r["unit_no"]: dict(r) for r in await server.hub.db.pool.fetch(
            "SELECT u.unit_no, u.status, u.price, u.facing, t.name AS tower, p.name AS project "
            "FROM inventory_units u JOIN inventory_projects p ON p.id = u.project_id "
            "LEFT JOIN inventory_towers t ON t.id = u.tower_id")}
        assert units["A-1201"] == {"unit_no": "A-1201", "status": "AVAILABLE", "price": 3.2e7,
                                   "facing": "sea", "tower": "Tower A",
                                   "project": "Marina Heights"}
        assert units["B-0401"]["tower"] == "Tower B" and units["V-07"]["tower"] is None
        assert units["A-1202"]["status"] == "SOLD"
        # Written as CRDT updates like any other change: in the log, for every device.
        assert await server.hub.db.pool.fetchval(
            "SELECT count(*) FROM hub_updates WHERE guid LIKE 'units/%'") == 4

        # One bad row refuses the whole batch: every problem by line, nothing written.
        before = {t: await _count(server, t) for t in (
            "inventory_units", "inventory_projects", "inventory_towers")}
        r = await _upload(http, path, BAD_UNITS, director)
        assert r.status_code == 201
        refused = r.json()
        assert refused["status"] == "refused"
        problems = {(e["line"], e["column"]) for e in refused["errors"]}
        assert problems == {(3, "floor"), (4, "price"), (4, "unit_no"), (5, "unit_no")}
        assert "line 2" in next(e["message"] for e in refused["errors"]
                                if (e["line"], e["column"]) == (4, "unit_no"))
        assert {t: await _count(server, t) for t in before} == before

        # The same units again: they exist already, so the batch is refused.
        r = await _upload(http, path, GOOD_UNITS, director)
        assert r.json()["status"] == "refused"
        assert {e["line"] for e in r.json()["errors"]} == {2, 3, 4, 5}

        listed = (await http.get(path, headers=director)).json()
        assert [b["status"] for b in listed] == ["refused", "refused", "committed", "validated"]
        r = await http.get(f"{path}/{refused['batch_id']}", headers=director)
        assert r.json()["errors"] == refused["errors"]
        assert (await http.get(f"{path}/no-such-batch", headers=director)).status_code == 404


UNREADABLE = {
    b"project,unit_no\nP,1\n": "missing column 'configuration'",
    b"project,unit_no,configuration,colour\nP,1,2BHK,red\n": "unknown column 'colour'",
    b"\xff\xfeproject": "not UTF-8",
    b"project,unit_no,configuration\n": "no rows",
    b"": "empty",
    b"project,unit_no,configuration\n\"P,1\n": "not readable CSV",
}


async def test_an_unreadable_file_is_refused_with_what_to_fix() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        director = await login(server, "sales_director@t1.test")
        for body, problem in UNREADABLE.items():
            r = await _upload(http, "/api/inventory/import-batches", body, director)
            assert r.status_code == 422, (body, r.text)
            assert problem in r.json()["detail"], (body, r.text)
        assert await _count(server, "inventory_units") == 0


CONTACTS = """full_name,phone,email,city,segment,tags
Meera Shah,09820011111,,Mumbai,HNI,nri;investor
Rohan Iyer,+91 98200 22222,rohan@new.example,Pune,,
Kabir Das,+91-98200-33333,anita@old.example,,,
Nisha Verma,,,Delhi,,
"""


async def test_crm_import_proposes_reviews_and_commits_together() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        base = {"tenant_id": "t1", "owner_id": "t1-junior_broker", "team_id": "north"}
        await create_many(server.hub.writer, DIRECTOR, [
            ("people", "meera", {**base, "full_name": "Meera Shah",
                                 "primary_phone": "+91 98200 11111", "city": "Bombay"}),
            ("people", "kabir", {**base, "full_name": "Kabir D", "primary_phone": "9820033333"}),
            ("people", "anita", {**base, "full_name": "Anita Das",
                                 "email": "Anita@Old.example"}),
        ])
        director = await login(server, "sales_director@t1.test")
        r = await _upload(http, "/api/crm/imports", CONTACTS, director)
        assert r.status_code == 201, r.text
        batch = r.json()
        assert (batch["status"], batch["summary"]) == (
            "proposed", {"create": 2, "merge": 1, "conflict": 1})
        by_line = {p["row_no"]: p for p in batch["proposals"]}
        meera = by_line[2]
        assert (meera["action"], meera["person_id"]) == ("merge", "meera")
        assert meera["changes"]["fill"] == {"segment": "HNI"}
        assert meera["changes"]["kept"] == {"city": {"current": "Bombay", "imported": "Mumbai"}}
        assert by_line[3]["fields"]["primary_phone"] == "+919820022222"
        assert by_line[4]["action"] == "conflict"
        assert {c["id"]: c["matched_on"] for c in by_line[4]["candidates"]} == {
            "kabir": ["phone"], "anita": ["email"]}
        batch_id = batch["batch_id"]
        review = f"/api/crm/imports/{batch_id}/review-proposal"
        commit = f"/api/crm/imports/{batch_id}/commit"

        # Nothing is written before every proposal is reviewed.
        r = await http.post(commit, headers=director)
        assert (r.status_code, r.json()["error"]) == (409, "not_reviewed")
        r = await http.put(review, json={"decision": "accepted"}, headers=director)
        assert [p["decision"] for p in r.json()["proposals"]] == [
            "accepted", "accepted", "pending", "accepted"]
        r = await http.put(review, json={"decision": "accepted", "row": 4}, headers=director)
        assert r.status_code == 422 and "person_id" in r.json()["detail"]
        r = await http.put(review, json={"decision": "accepted", "row": 4,
                                         "person_id": "meera"}, headers=director)
        assert r.status_code == 422  # not one of the row's candidates
        r = await http.put(review, json={"decision": "accepted", "row": 4,
                                         "person_id": "kabir"}, headers=director)
        assert r.status_code == 200
        r = await http.put(review, json={"decision": "rejected", "row": 5}, headers=director)
        assert r.status_code == 200
        r = await http.put(review, json={"decision": "rejected", "row": 9}, headers=director)
        assert r.status_code == 404

        people = await _count(server, "crm_people")
        r = await http.post(commit, params={"dry_run": "true"}, headers=director)
        assert r.json() == {"batch_id": batch_id, "dry_run": True, "create": 1, "merge": 2,
                            "rejected": 1}
        assert await _count(server, "crm_people") == people
        r = await http.post(commit, headers=director)
        assert r.status_code == 200, r.text
        assert await _count(server, "crm_people") == people + 1
        rows = {r["id"]: dict(r) for r in await server.hub.db.pool.fetch(
            "SELECT id, full_name, primary_phone, email, city, segment, tags FROM crm_people")}
        assert rows["meera"]["city"] == "Bombay" and rows["meera"]["segment"] == "HNI"
        assert rows["meera"]["tags"] == ["investor", "nri"]
        assert rows["kabir"]["email"] == "anita@old.example"  # filled, name kept
        assert rows["kabir"]["full_name"] == "Kabir D"
        assert rows[f"{batch_id}-3"]["primary_phone"] == "+919820022222"
        assert not any(r["full_name"] == "Nisha Verma" for r in rows.values())
        assert (await http.get(f"/api/crm/imports/{batch_id}", headers=director)
                ).json()["status"] == "committed"
        r = await http.post(commit, headers=director)
        assert r.status_code == 409  # committed once


async def test_a_crm_file_with_a_bad_row_is_refused_and_proposes_nothing() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        director = await login(server, "sales_director@t1.test")
        bad = ("full_name,phone,email\nGood One,9820044444,good@x.example\n"
               ",9820055555,\nBad Phone,call me,\nBad Mail,,not-an-email\n"
               "Twin,09820044444,\n")
        r = await _upload(http, "/api/crm/imports", bad, director)
        batch = r.json()
        assert (batch["status"], batch["proposals"]) == ("refused", [])
        assert {(e["line"], e["column"]) for e in batch["errors"]} == {
            (3, "full_name"), (4, "phone"), (5, "email"), (6, "phone")}
        r = await http.put(f"/api/crm/imports/{batch['batch_id']}/review-proposal",
                           json={"decision": "accepted"}, headers=director)
        assert r.status_code == 409
        assert await _count(server, "crm_people") == 0
        broker = await login(server, "senior_broker@t1.test")
        r = await _upload(http, "/api/crm/imports", bad, broker)
        assert r.status_code == 403

        # The file fixed: only new people, committed together.
        good = "full_name,phone\nGood One,9820044444\nAnother,+44 20 7946 0958\n"
        batch = (await _upload(http, "/api/crm/imports", good, director)).json()
        assert batch["summary"] == {"create": 2, "merge": 0, "conflict": 0}
        await http.put(f"/api/crm/imports/{batch['batch_id']}/review-proposal",
                       json={"decision": "accepted"}, headers=director)
        r = await http.post(f"/api/crm/imports/{batch['batch_id']}/commit", headers=director)
        assert r.json()["create"] == 2
        rows = await server.hub.db.pool.fetch(
            "SELECT id, primary_phone FROM crm_people ORDER BY id")
        created = batch["batch_id"]
        assert [(r["id"], r["primary_phone"]) for r in rows] == [
            (f"{created}-2", "+919820044444"), (f"{created}-3", "+442079460958")]
        assert await server.hub.db.pool.fetchval(
            "SELECT count(*) FROM hub_updates WHERE guid LIKE 'people/%'") == 2
