"""The WebOS pages over HTTP on a real hub: every page and form by role (a WebOS row for every
route, like the API's matrix), the forms' writes going through the CRDT write path and the one
policy, and refusals as clear pages, never a 500."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi.routing import APIRoute

from core.identity import Role
from hub.webos import ROUTERS
from hub.webos.render import PageRoute
from tests.hubkit import pair_device, running_hub
from tests.webos.kit import ROLES, seed_crm, signed_in

pytestmark = pytest.mark.anyio

ALL_200 = dict.fromkeys(ROLES, 200)
MANAGERS = {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403}
REDIRECT = dict.fromkeys(ROLES, 303)
ROWS: list[tuple[str, str, dict[str, str] | None, dict[str, int]]] = [
    # (method, path, form (the CSRF token is added), status by role); forms answer 303 with
    # their outcome in the redirect, or the page with the refusal's status.
    ("GET", "/", None, REDIRECT),
    ("GET", "/login", None, REDIRECT),  # already signed in: on to the dashboard
    ("GET", "/dashboard", None, ALL_200),
    ("GET", "/crm/contacts", None, ALL_200),
    ("GET", "/crm/clients/{person_id}", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 200, "junior_broker": 200}),
    ("GET", "/crm/kanban", None, ALL_200),
    ("GET", "/sentinel", None, ALL_200),
    ("GET", "/webos/events?max_s=0", None, ALL_200),
    ("GET", "/admin/devices", None, MANAGERS),
    ("GET", "/admin/users", None, MANAGERS),
    ("GET", "/admin/audit", None, MANAGERS),
    ("GET", "/admin/gpu", None, MANAGERS),
    ("POST", "/crm/clients/{person_id}", {"full_name": "Asha Mehta", "city": "Nashik"}, REDIRECT),
    ("POST", "/crm/leads/{lead_id}/stage", {"stage": "SITE_VISIT"}, REDIRECT),
    ("POST", "/crm/clients/{person_id}/tasks", {"title": "Call back"}, REDIRECT),
    ("POST", "/crm/leads/{lead_id}/reassign", {"owner_id": "t1-junior_broker"}, REDIRECT),
    ("POST", "/sentinel/consents/{session_id}/revoke", None, REDIRECT),
    ("POST", "/admin/devices/pairing", {"user_id": "t1-junior2", "device_kind": "ipad"},
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403}),
    ("POST", "/admin/devices/{device_id}/revoke", None,
     {"admin": 303, "sales_director": 303, "senior_broker": 403, "junior_broker": 403}),
    ("POST", "/admin/users", {"email": "new-{role}@t1.test", "password": "long enough pw",
                              "full_name": "New", "role": "JUNIOR_BROKER"},
     {"admin": 303, "sales_director": 303, "senior_broker": 403, "junior_broker": 403}),
    ("POST", "/admin/users/{user_id}", {"action": "disable"},
     {"admin": 303, "sales_director": 303, "senior_broker": 403, "junior_broker": 403}),
    ("POST", "/admin/gpu/mode", {"mode": "llm"},
     {"admin": 303, "sales_director": 303, "senior_broker": 403, "junior_broker": 403}),
    ("POST", "/logout", None, REDIRECT),  # last: the sessions end here
]
PUBLIC = {("POST", "/login")}
"""Tested in test_session.py."""
ELSEWHERE = ("/oracle",)
"""The Oracle pages have their own tests."""


def _served() -> set[tuple[str, str]]:
    routes = [r for router in ROUTERS for r in router.routes]
    assert all(isinstance(r, PageRoute) for r in routes)
    return {(m, r.path) for r in routes if isinstance(r, APIRoute)
            and not r.path.startswith(ELSEWHERE) for m in r.methods}


async def test_every_webos_route_by_role() -> None:
    async with running_hub() as server:
        await seed_crm(server)
        assert _served() == {(m, p.split("?")[0]) for m, p, _, _ in ROWS} | PUBLIC
        got, want = {}, {}
        async with AsyncExitStack() as stack:
            clients = {role: await stack.enter_async_context(signed_in(server, f"{role}@t1.test"))
                       for role in ROLES}
            for n, (method, path, form, expected) in enumerate(ROWS):
                for role, status in expected.items():
                    http, csrf = clients[role]
                    names = {"role": role, "user_id": f"t1-x{n}{role}", "person_id": "c-mine",
                             "lead_id": "l-mine", "session_id": "s-none"}
                    if "{user_id}" in path:
                        await server.hub.accounts.create_user(
                            "t1", f"x{n}{role}@t1.test", "long enough pw",
                            Role.JUNIOR_BROKER, "X",
                            user_id=names["user_id"])
                    if "{device_id}" in path:
                        names["device_id"] = (await pair_device(
                            server, "junior2@t1.test", "t1-junior2", 9100 + len(got)
                        )).device_id
                    data = {k: v.format(**names) for k, v in (form or {}).items()}
                    r = await http.request(method, path.format(**names),
                                           data={**data, "csrf_token": csrf}
                                           if method == "POST" else None)
                    got[method, path, role] = r.status_code
                    want[method, path, role] = status
        assert got == want


def _any_ids(path: str) -> str:
    return path.format(person_id="c-mine", lead_id="l-mine", session_id="s-1", device_id="d",
                       user_id="t1-junior2")


async def test_without_a_session_pages_lead_to_login_and_posts_need_the_token() -> None:
    async with running_hub() as server:
        await seed_crm(server)
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            for method, path, _, _ in ROWS:
                if path in ("/", "/login"):
                    continue
                r = await anonymous.request(method, _any_ids(path),
                                            data={} if method == "POST" else None)
                assert r.status_code == 303, (method, path)
                assert r.headers["location"].startswith("/login"), (method, path)
        async with signed_in(server, "admin@t1.test") as (http, _):
            for method, path, form, _ in ROWS:
                if method != "POST":
                    continue
                r = await http.post(_any_ids(path), data=form or {})
                assert r.status_code == 403 and "reload the page" in r.text, path
            # nothing happened
            row = await server.hub.db.pool.fetchrow(
                "SELECT city FROM crm_people WHERE id = 'c-mine'")
            assert row["city"] == "Pune"
            assert (await http.get("/dashboard")).status_code == 200


async def test_the_client_form_writes_through_the_policy() -> None:
    async with running_hub() as server:
        await seed_crm(server)
        pool = server.hub.db.pool
        async with signed_in(server, "junior_broker@t1.test") as (junior, csrf), \
                signed_in(server, "junior2@t1.test") as (other, other_csrf):
            page = await junior.get("/crm/clients/c-mine")
            assert "Asha Mehta" in page.text and "Asked for a site visit" in page.text
            assert "<svg" in page.text and "polyline" in page.text  # the QD history line
            assert "3BHK" in page.text and "2.5 Cr" in page.text

            r = await junior.post("/crm/clients/c-mine", data={
                "csrf_token": csrf, "full_name": "Asha Mehta", "city": "Nashik",
                "segment": "", "notes": "Prefers weekends"})
            assert r.status_code == 303 and "Saved" in r.headers["location"]
            row = await pool.fetchrow("SELECT city, segment, notes FROM crm_people WHERE id ="
                                      " 'c-mine'")
            assert dict(row) == {"city": "Nashik", "segment": None, "notes": "Prefers weekends"}
            # the change is a CRDT update in the log, authored by the junior
            author = await pool.fetchval(
                "SELECT user_id FROM hub_updates WHERE guid = 'people/c-mine' ORDER BY seq DESC"
                " LIMIT 1")
            assert author == "t1-junior_broker"

            # another broker's client: refused on the page with the policy's reason
            r = await other.post("/crm/clients/c-mine", data={
                "csrf_token": other_csrf, "full_name": "Hijacked"})
            assert r.status_code == 403 and "belongs to another broker" in r.text
            # a blank name: refused with the reason, the form keeps what was typed
            r = await junior.post("/crm/clients/c-mine", data={
                "csrf_token": csrf, "full_name": "  ", "city": "Typed city"})
            assert r.status_code == 422 and "a client needs a name" in r.text
            assert 'value="Typed city"' in r.text
            # too long a phone number: the model's limit, as a clear 422
            r = await junior.post("/crm/clients/c-mine", data={
                "csrf_token": csrf, "full_name": "Asha", "primary_phone": "9" * 40})
            assert r.status_code == 422, r.text
            assert await pool.fetchval("SELECT full_name FROM crm_people WHERE id = 'c-mine'"
                                       ) == "Asha Mehta"

            # a task for the client, with a due time from the browser's datetime field
            r = await junior.post("/crm/clients/c-mine/tasks", data={
                "csrf_token": csrf, "title": "Send the floor plan", "due_at": "2026-12-05T10:30"})
            assert "Task%20added" in r.headers["location"]
            page = await junior.get("/crm/clients/c-mine")
            assert "Send the floor plan" in page.text
            r = await junior.post("/crm/clients/c-mine/tasks", data={
                "csrf_token": csrf, "title": "x", "due_at": "next tuesday"})
            assert r.status_code == 303 and "err=" in r.headers["location"]


async def test_kanban_moves_follow_the_stage_policy() -> None:
    async with running_hub() as server:
        await seed_crm(server)
        pool = server.hub.db.pool
        async with signed_in(server, "junior_broker@t1.test") as (junior, csrf), \
                signed_in(server, "sales_director@t1.test") as (director, dcsrf):
            board = await junior.get("/crm/kanban")
            assert "Asha Mehta" in board.text and "Vikram Rao" not in board.text
            r = await junior.post("/crm/leads/l-mine/stage",
                                  data={"csrf_token": csrf, "stage": "WON"})
            assert r.status_code == 303
            assert "may%20not%20move%20a%20lead%20to%20WON" in r.headers["location"]
            shown = await junior.get(r.headers["location"])
            assert "may not move a lead to WON" in shown.text
            r = await junior.post("/crm/leads/l-mine/stage", headers={
                "Accept": "application/json"}, data={"csrf_token": csrf, "stage": "WON"})
            assert r.status_code == 403 and r.json()["error"] == "lead_stage_forbidden"
            r = await junior.post("/crm/leads/l-mine/stage", headers={
                "Accept": "application/json"}, data={"csrf_token": csrf, "stage": "BOGUS"})
            assert r.status_code == 422
            assert await pool.fetchval("SELECT stage FROM crm_leads WHERE id = 'l-mine'"
                                       ) == "QUALIFIED"

            r = await junior.post("/crm/leads/l-mine/stage", headers={
                "Accept": "application/json"}, data={"csrf_token": csrf, "stage": "SITE_VISIT"})
            assert r.status_code == 200, r.text
            r = await director.post("/crm/leads/l-mine/stage",
                                    data={"csrf_token": dcsrf, "stage": "WON"})
            assert r.status_code == 303 and "moved" in r.headers["location"]
            assert await pool.fetchval("SELECT stage FROM crm_leads WHERE id = 'l-mine'") == "WON"
            moves = await pool.fetch("SELECT from_stage, to_stage, changed_by FROM "
                                     "crm_stage_history WHERE lead_id = 'l-mine' ORDER BY "
                                     "changed_at")
            assert [tuple(m) for m in moves] == [
                ("QUALIFIED", "SITE_VISIT", "t1-junior_broker"),
                ("SITE_VISIT", "WON", "t1-sales_director")]

            # reassignment: managers only (the form is not even shown to a broker)
            assert "Reassign" not in (await junior.get("/crm/clients/c-mine")).text
            assert "Reassign" in (await director.get("/crm/clients/c-mine")).text
            r = await junior.post("/crm/leads/l-mine/reassign", data={
                "csrf_token": csrf, "owner_id": "t1-junior2", "person_id": "c-mine"})
            assert r.headers["location"].startswith("/crm/clients/c-mine?err=")
            assert "reassign" in r.headers["location"]
            r = await director.post("/crm/leads/l-mine/reassign", data={
                "csrf_token": dcsrf, "owner_id": "nobody-here", "person_id": "c-mine"})
            assert "no%20active%20user" in r.headers["location"]
            assert await pool.fetchval("SELECT owner_id FROM crm_leads WHERE id = 'l-mine'"
                                       ) == "t1-junior_broker"
            r = await director.post("/crm/leads/l-mine/reassign", data={
                "csrf_token": dcsrf, "owner_id": "t1-junior2", "person_id": "c-mine"})
            assert "reassigned" in r.headers["location"]
            row = await pool.fetchrow("SELECT owner_id, team_id FROM crm_leads WHERE id = "
                                      "'l-mine'")
            assert dict(row) == {"owner_id": "t1-junior2", "team_id": "south"}


async def test_admin_pages_manage_accounts_and_devices_within_the_policy() -> None:
    async with running_hub() as server, \
            signed_in(server, "sales_director@t1.test") as (director, csrf), \
            signed_in(server, "junior_broker@t1.test") as (junior, _):
        nav = (await junior.get("/dashboard")).text
        assert "/admin/users" not in nav and "/crm/kanban" in nav
        assert "/admin/users" in (await director.get("/dashboard")).text
        page = await junior.get("/admin/users")
        assert page.status_code == 403 and "requires role ADMIN or SALES_DIRECTOR" in page.text

        # a director grants broker roles only, and cannot manage an admin
        r = await director.post("/admin/users", data={
            "csrf_token": csrf, "email": "boss@t1.test", "password": "long enough pw",
            "full_name": "Boss", "role": "ADMIN"})
        assert "may%20not%20grant%20ADMIN" in r.headers["location"]
        r = await director.post("/admin/users/t1-admin", data={
            "csrf_token": csrf, "action": "disable"})
        assert "may%20not%20manage" in r.headers["location"]
        r = await director.post("/admin/users/t1-junior2", data={
            "csrf_token": csrf, "action": "password", "password": "short"})
        assert "at%20least%2010" in r.headers["location"]
        r = await director.post("/admin/users/t1-junior2", data={
            "csrf_token": csrf, "action": "role", "role": "SENIOR_BROKER"})
        assert "Role%20changed" in r.headers["location"]
        assert await server.hub.db.pool.fetchval(
            "SELECT role FROM hub_users WHERE user_id = 't1-junior2'") == "SENIOR_BROKER"
        r = await director.post("/admin/users/t1-junior2", data={
            "csrf_token": csrf, "action": "explode"})
        assert r.status_code == 303 and "unknown%20action" in r.headers["location"]

        page = await director.post("/admin/devices/pairing", data={
            "csrf_token": csrf, "user_id": "t1-junior2", "device_kind": "ipad"})
        assert page.status_code == 200 and "data:image/png;base64," in page.text
        device = await pair_device(server, "junior2@t1.test", "t1-junior2", 9301)
        devices = await director.get("/admin/devices")
        assert device.device_id in devices.text
        r = await director.post(f"/admin/devices/{device.device_id}/revoke",
                                data={"csrf_token": csrf})
        assert "revoked" in r.headers["location"]
        assert await server.hub.db.pool.fetchval(
            "SELECT status FROM hub_devices WHERE device_id = $1", device.device_id
        ) == "revoked"
        audit = await director.get("/admin/audit?kind=create")
        assert audit.status_code == 200
        r = await director.get("/admin/audit?before=0")
        assert r.status_code == 422
