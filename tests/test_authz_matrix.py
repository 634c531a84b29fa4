"""The authorization matrix: every route and every sync write × role × own/other tenant × own/other
broker's record × token and device state, each cell with its exact expected outcome; and the
same change gets the same verdict over REST and over sync (one hub, many requests)."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from core.identity import Principal, Role
from hub.scope import may_read
from hub.server import HubServer
from hub.store import create_many
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc
from tests import hubkit
from tests.hubkit import login, pair_device, running_hub

pytestmark = pytest.mark.anyio

ACTORS = ("admin", "sales_director", "senior_broker", "junior_broker", "junior2")
"""t1's users; the senior and the junior are in team north, junior2 in south. Every target
record below belongs to the junior (team north)."""
OWNER, TEAM = "t1-junior_broker", "north"
OK = "ok"
_ids = itertools.count()


def _by_role(manager: str, senior: str, junior: str, junior2: str) -> dict[str, str]:
    return {"admin": manager, "sales_director": manager, "senior_broker": senior,
            "junior_broker": junior, "junior2": junior2}


def _owned(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"tenant_id": "t1", "owner_id": OWNER, "team_id": TEAM, **(extra or {})}


TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "client": ("people", _owned({"full_name": "Zara Khan", "city": "Dubai"})),
    "lead": ("leads", _owned({"person_id": "p-any", "stage": "QUALIFIED"})),
    "opportunity": ("opportunities", _owned({"person_id": "p-any", "stage": "PROPOSAL"})),
    "consent": ("consents", _owned({"session_id": "s-any", "granted_at": "2026-11-20T10:00:00Z"})),
    "task": ("tasks", _owned({"title": "Call back"})),
    "unit": ("units", {"tenant_id": "t1", "project_id": "pr", "unit_no": "A-101",
               "configuration": "3BHK", "price": 1e7}),
    "hold": ("unit_holds", _owned({"unit_id": "u-any", "holder_id": OWNER, "claims": [OWNER]})),

    "message": ("comms_messages", _owned({"thread_id": "th-any", "direction": "outbound",
                                          "body": "Hello", "status": "queued",
                                          "occurred_at": "2026-11-20T10:00:00Z",
                                          "author_id": OWNER})),
    "appointment": ("calendar_events", _owned({"title": "Site visit", "lead_id": "l-any",
                                               "starts_at": "2026-11-20T10:00:00Z"})),
    "decided insight": ("insights", _owned({"lead_id": "l-any", "title": "Call today",
                                            "status": "acted", "decided_by": OWNER,
                                            "decided_at": "2026-11-20T10:00:00Z"})),
    "open insight": ("insights", _owned({"lead_id": "l-any", "title": "Call today"})),
}
"""Existing records each change starts from (a fresh copy per change, actor and door)."""

CHANGES: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    # name: (target, values, expected verdict by actor)
    "edit a client": ("client", {"city": "London"}, _by_role(OK, OK, OK, "not_owner")),
    "delete a client": ("client", {"deleted": True}, _by_role(OK, OK, OK, "not_owner")),
    "reassign a client": ("client", {"owner_id": "t1-junior2"},
                          _by_role(OK, "reassign_forbidden", "reassign_forbidden", "not_owner")),
    "edit a lead": ("lead", {"notes": "Prefers calls"}, _by_role(OK, OK, OK, "not_owner")),
    "take a lead": ("lead", {"owner_id": "t1-junior2"},
                    _by_role(OK, "reassign_forbidden", "reassign_forbidden", "not_owner")),
    "move a lead to another team": (
        "lead", {"team_id": "south"},
        _by_role(OK, "reassign_forbidden", "reassign_forbidden", "not_owner")),
    "delete a lead": ("lead", {"deleted": True}, _by_role(OK, OK, OK, "not_owner")),
    "edit an opportunity": ("opportunity", {"notes": "Budget firm"},
                            _by_role(OK, OK, OK, "not_owner")),
    "move an opportunity's stage": (
        "opportunity", {"stage": "BOOKING"},
        _by_role(OK, "manager_only_field", "manager_only_field", "not_owner")),
    "revoke a consent": ("consent", {"revoked_at": "2026-11-21T10:00:00Z"},
                         _by_role(OK, OK, OK, "not_owner")),
    "edit a task": ("task", {"title": "Call at noon"}, _by_role(OK, OK, OK, OK)),
    "price a unit": ("unit", {"price": 2e7},
                     _by_role(OK, "manager_only_field", "manager_only_field",
                              "manager_only_field")),
    "describe a unit": ("unit", {"facing": "sea"},
                        _by_role(OK, "manager_only", "manager_only", "manager_only")),
    "edit another's hold": ("hold", {"note": "mine now"}, _by_role(OK, OK, OK, "unit_held")),
    "claim a held unit too": ("hold", {"claims": [OWNER, "t1-junior2"]},
                              _by_role("unit_held", "unit_held", "unit_held", "unit_held")),

    "mark a message read": ("message", {"status": "read"},
                            _by_role(*["message_immutable"] * 4)),
    "edit a message": ("message", {"body": "Hello!"}, _by_role(*["message_immutable"] * 4)),
    "withdraw a queued message": ("message", {"deleted": True},
                                  _by_role(OK, OK, OK, "not_owner")),
    "move an appointment": ("appointment", {"starts_at": "2026-11-21T10:00:00Z",
                                            "duration_min": 90},
                            _by_role(OK, OK, OK, "not_owner")),
    "take an appointment": ("appointment", {"owner_id": "t1-junior2"},
                            _by_role(OK, "reassign_forbidden", "reassign_forbidden",
                                     "not_owner")),
    "act on an insight": ("open insight", {"status": "acted", "decided_by": "t1-x"},
                          _by_role(OK, OK, OK, "not_owner")),
    "decide an insight again": ("decided insight", {"status": "dismissed"},
                                _by_role(*["already_decided"] * 4)),
}
CREATES: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    # name: (collection, values (owner "self": the actor), expected verdict by actor)
    "create an own client": ("people", {"full_name": "New", "owner_id": "self"},
                             _by_role(OK, OK, OK, OK)),
    "create an unowned client": ("people", {"full_name": "New", "owner_id": None},
                                 _by_role(OK, OK, OK, OK)),
    "create another's client": ("people", {"full_name": "New", "owner_id": "t1-junior2"},
                                _by_role(OK, "not_owner", "not_owner", OK)),
    "create a client in another tenant": (
        "people", {"full_name": "New", "owner_id": "self", "tenant_id": "t2"},
        _by_role(*["other_tenant"] * 4)),
    "create an own lead": ("leads", {"person_id": "p-any", "owner_id": "self"},
                           _by_role(OK, OK, OK, OK)),
    "create another's lead": ("leads", {"person_id": "p-any", "owner_id": "t1-junior2"},
                              _by_role(OK, "not_owner", "not_owner", OK)),
    "create a lead in another team": (
        "leads", {"person_id": "p-any", "owner_id": "self", "team_id": "east"},
        _by_role(OK, "other_team", "other_team", "other_team")),
    "log an event on an own lead": (
        "comm_events", {"lead_id": "l-any", "owner_id": "self", "channel": "call",
                        "occurred_at": "2026-11-20T10:00:00Z"}, _by_role(OK, OK, OK, OK)),
    "log an event on another broker's lead": (
        "comm_events", {"lead_id": "l-any", "owner_id": "t1-junior2", "team_id": "south",
                        "channel": "call", "occurred_at": "2026-11-20T10:00:00Z"},
        _by_role(OK, "not_owner", "not_owner", OK)),
    "remember a fact on a team member's lead": (
        "memory_facts", {"lead_id": "l-any", "owner_id": "t1-junior_broker", "team_id": "north",
                         "category": "budget", "fact": "INR 6 Cr"},
        _by_role(OK, OK, OK, "not_owner")),
    "create a won opportunity": (
        "opportunities", {"person_id": "p-any", "owner_id": "self", "stage": "CLOSED_WON"},
        _by_role(OK, "manager_only_field", "manager_only_field", "manager_only_field")),
    "create a project": ("projects", {"name": "Sky Gardens", "owner_id": "self"},
                         _by_role(OK, "manager_only", "manager_only", "manager_only")),
    "hold a unit under another id": (
        "unit_holds", {"unit_id": "u-any", "holder_id": "t1-junior2", "claims": ["t1-junior2"],
                       "owner_id": "self"},
        _by_role("hold_inconsistent", "hold_inconsistent", "hold_inconsistent",
                 "hold_inconsistent")),

    "create a delivered message": (
        "comms_messages", {"thread_id": "th-any", "direction": "outbound", "status": "delivered",
                           "occurred_at": "2026-11-20T10:00:00Z", "owner_id": "self"},
        _by_role(*["message_status"] * 4)),
    "score the junior's lead": (
        "qd_scores", {"lead_id": "l-scored", "score": 70, "scored_at": "2026-11-20T10:00:00Z",
                      "owner_id": "self"}, _by_role(OK, OK, OK, "not_owner")),
}
NAMES = {"score the junior's lead": "lead"}
"""Creates naming an existing record (seeded as ``TARGETS[target]`` with id ``l-scored``)."""
REST_DOORS: dict[str, Callable[[str, str], tuple[str, str, dict[str, Any]]]] = {
    # change or create: (method, path, body) for a record id and the actor's user id
    "edit a client": lambda rid, _: ("PATCH", f"/api/crm/client-data/{rid}",
                                     {"values": {"city": "London"}}),
    "edit a lead": lambda rid, _: ("PATCH", f"/api/leads/{rid}",
                                   {"values": {"notes": "Prefers calls"}}),
    "take a lead": lambda rid, _: ("POST", f"/api/leads/{rid}/reassign", {
        "owner_id": "t1-junior2", "team_id": TEAM, "opportunities": False}),
    "move a lead to another team": lambda rid, _: ("POST", f"/api/leads/{rid}/reassign", {
        "owner_id": OWNER, "team_id": "south", "opportunities": False}),
    "edit an opportunity": lambda rid, _: ("PATCH", f"/api/opportunities/{rid}",
                                           {"values": {"notes": "Budget firm"}}),
    "move an opportunity's stage": lambda rid, _: ("POST", f"/api/opportunities/{rid}/stage",
                                                   {"stage": "BOOKING"}),
    "revoke a consent": lambda rid, _: ("POST", "/api/sentinel/consent/revoke",
                                        {"session_id": f"s-{rid}"}),
    "price a unit": lambda rid, _: ("PATCH", f"/api/inventory/properties/{rid}",
                                    {"values": {"price": 2e7}}),
    "describe a unit": lambda rid, _: ("PATCH", f"/api/inventory/properties/{rid}",
                                       {"values": {"facing": "sea"}}),
    "move an appointment": lambda rid, _: ("PATCH", f"/api/mobile-edge/calendar/{rid}", {
        "starts_at": "2026-11-21T10:00:00Z", "duration_min": 90}),
    "act on an insight": lambda rid, _: ("POST", f"/api/mobile-edge/insights/{rid}/act",
                                         {"action": "act"}),
    "decide an insight again": lambda rid, _: ("POST", f"/api/mobile-edge/insights/{rid}/act",
                                               {"action": "dismiss"}),
    "create an own client": lambda _, me: ("POST", "/api/crm/contacts",
                                           {"values": {"full_name": "New", "owner_id": me}}),
    "create an unowned client": lambda _, me: (
        "POST", "/api/crm/contacts", {"values": {"full_name": "New", "owner_id": None}}),
    "create another's client": lambda _, me: (
        "POST", "/api/crm/contacts", {"values": {"full_name": "New", "owner_id": "t1-junior2"}}),
    "create a project": lambda _, me: ("POST", "/api/inventory/projects",
                                       {"values": {"name": "Sky Gardens", "owner_id": me}}),
    "score the junior's lead": lambda _, me: ("POST", "/api/sentinel/session/complete", {
        "session_id": f"s-score-{me}", "qd": 70, "lead_id": "l-scored"}),
}
"""Every change and create of the tables above that a REST route can express, as a request
making the same change (a route that sets more, such as a stage move's history record, makes
the change the sync push makes and no other on the record)."""
ROLES = {"admin": Role.ADMIN, "sales_director": Role.SALES_DIRECTOR,
         "senior_broker": Role.SENIOR_BROKER, "junior_broker": Role.JUNIOR_BROKER,
         "junior2": Role.JUNIOR_BROKER}


def _reads_target(actor: str, change: str) -> bool:
    """Whether ``actor`` may read the record ``change`` starts from, or names (REST answers
    404 when not: a record outside the caller's scope is never told to exist)."""
    team = "south" if actor == "junior2" else TEAM
    principal = Principal("t1", f"t1-{actor}", ROLES[actor], team)
    coll, values = TARGETS[CHANGES[change][0] if change in CHANGES else NAMES[change]]
    return may_read(principal, coll, values.get("owner_id"), values.get("team_id"))


def _verdict(status: int, body: dict[str, Any]) -> str:
    return OK if status in (200, 201) else str(body.get("error"))


async def _seed_targets(server: HubServer) -> dict[tuple[str, str, str], str]:
    """A fresh copy of each change's target for every actor and door: their record ids."""
    director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
    records, ids = [], {}
    for change, (target, _, _) in CHANGES.items():
        coll, values = TARGETS[target]
        for actor, door in itertools.product(ACTORS, ("rest", "sync")):
            rid = f"{target}-{next(_ids)}"
            ids[change, actor, door] = rid
            extra = {"session_id": f"s-{rid}"} if coll == "consents" else {}
            extra |= {"unit_id": rid} if coll == "unit_holds" else {}
            records.append((coll, rid, {**values, **extra}))
    records.append(("leads", "l-scored", TARGETS["lead"][1]))
    records += [("consents", f"c-score-{a}", {"tenant_id": "t1", "session_id": f"s-score-t1-{a}",
                                              "granted_at": "2026-11-20T10:00:00Z"})
                for a in ACTORS]  # the consent a REST score needs
    await create_many(server.hub.writer, director, records)
    return ids


async def _push(device: hubkit.TestDevice, server: HubServer, guid: str, values: dict[str, Any],
                uid: str) -> None:
    """Push ``values`` as an update made on the hub's current state of ``guid``."""
    state = await server.hub.db.pool.fetchval(
        "SELECT state FROM hub_documents WHERE tenant_id = 't1' AND guid = $1", guid)
    coll, rid = guid.split("/")
    doc = RecordDoc(collection(coll), rid, client_id=device.client_id,
                    state=bytes(state) if state else None)
    await device.push([p.PushItem(uid, guid, doc.write(values))])


def _sync_verdict(device: hubkit.TestDevice, uid: str) -> str:
    return OK if uid in device.acks else device.refusals[uid].reason


async def test_every_write_gets_its_exact_verdict_and_the_same_over_rest_and_sync() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        ids = await _seed_targets(server)
        tokens = {a: await login(server, f"{a}@t1.test") for a in ACTORS}
        devices = {a: await pair_device(server, f"{a}@t1.test", f"t1-{a}", 7000 + n)
                   for n, a in enumerate(ACTORS)}
        for d in devices.values():
            await d.connect()

        async def over_sync(actor: str) -> dict[str, str]:
            device, me, uids = devices[actor], f"t1-{actor}", {}
            for change, (target, values, _) in CHANGES.items():
                coll = TARGETS[target][0]
                uids[change] = uid = f"{actor}-{change}"
                await _push(device, server, f"{coll}/{ids[change, actor, 'sync']}", values, uid)
            for create, (coll, values, _) in CREATES.items():
                uids[create] = uid = f"{actor}-{create}"
                owner = me if values["owner_id"] == "self" else values["owner_id"]
                await _push(device, server, f"{coll}/new-{next(_ids)}",
                            {"tenant_id": "t1", **values, "owner_id": owner}, uid)
            await device.wait_for(lambda: all(u in device.acks or u in device.refusals
                                              for u in uids.values()), timeout=60)
            return {name: _sync_verdict(device, uid) for name, uid in uids.items()}

        async def over_rest(actor: str) -> dict[str, str]:
            verdicts = {}
            for name, door in REST_DOORS.items():
                rid = ids.get((name, actor, "rest"), "")
                method, path, body = door(rid, f"t1-{actor}")
                r = await http.request(method, path, json=body, headers=tokens[actor])
                assert r.status_code < 500, r.text
                verdicts[name] = _verdict(r.status_code, r.json())
            return verdicts

        sync = dict(zip(ACTORS, await asyncio.gather(*(over_sync(a) for a in ACTORS)),
                        strict=True))
        rest = {a: await over_rest(a) for a in ACTORS}
        for d in devices.values():
            await d.close()

        expected = {a: {name: table[a] for name, (_, _, table) in {**CHANGES, **CREATES}.items()}
                    for a in ACTORS}
        assert sync == expected
        # Over REST the same verdict, except that a record the actor may not read (changed or
        # named) is a 404; the same change over sync is refused then too.
        hidden = {(a, name) for a in ACTORS for name in REST_DOORS
                  if (name in CHANGES or name in NAMES) and not _reads_target(a, name)}
        assert hidden and all(expected[a][name] != OK for a, name in hidden)
        assert rest == {a: {name: "not_found" if (a, name) in hidden else expected[a][name]
                            for name in REST_DOORS} for a in ACTORS}
        # The refused changes left their records as they were.
        row = await server.hub.db.pool.fetchrow(
            "SELECT owner_id, team_id, deleted FROM crm_leads WHERE tenant_id = 't1' AND id = $1",
            ids["take a lead", "junior_broker", "sync"])
        assert dict(row) == {"owner_id": OWNER, "team_id": TEAM, "deleted": False}


CALLERS = ("admin", "sales_director", "senior_broker", "junior_broker", "t2")
MANAGERS_200 = {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
                "t2": 200}
MANAGERS_201 = {"admin": 201, "sales_director": 201, "senior_broker": 403,
                "junior_broker": 403, "t2": 201}
T1_200 = {"admin": 200, "sales_director": 200, "senior_broker": 200, "junior_broker": 200,
          "t2": 404}
T1_MANAGERS = {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
               "t2": 404}
IMPORTS_404 = {"admin": 404, "sales_director": 404, "senior_broker": 403, "junior_broker": 403,
               "t2": 404}
INVENTORY_ROUTES: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    # {unit}: a t1 unit; {spare}: a t1 unit of the caller's own, {spare_media} its media;
    # {batch}: no batch (directors get 404 after the role check); uploads without a file: 422.
    ("GET", "/api/inventory/projects", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/inventory/projects", {"values": {"name": "New Tower"}}, MANAGERS_201),
    ("GET", "/api/inventory/towers", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/inventory/towers", {"values": {"project_id": "pr", "name": "T"}},
     MANAGERS_201),
    ("GET", "/api/inventory/properties", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/inventory/properties", {"values": {
        "project_id": "pr", "unit_no": "N-{caller}", "configuration": "2BHK"}}, MANAGERS_201),
    ("GET", "/api/inventory/properties/{unit}", None, T1_200),
    ("PATCH", "/api/inventory/properties/{unit}", {"values": {"facing": "sea"}}, T1_MANAGERS),
    ("GET", "/api/inventory/properties/{unit}/media", None, T1_200),
    ("POST", "/api/inventory/properties/{unit}/media", {"uri": "https://cdn.test/a.jpg"},
     {"admin": 201, "sales_director": 201, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("DELETE", "/api/inventory/media/{spare_media}", None, T1_MANAGERS),
    ("GET", "/api/inventory/holds", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/inventory/properties/{spare}/hold", {"hours": 2},
     {"admin": 201, "sales_director": 201, "senior_broker": 201, "junior_broker": 201,
      "t2": 404}),
    ("DELETE", "/api/inventory/properties/{spare}/hold", None, T1_200),
    ("POST", "/api/inventory/properties/{held}/hold", {},
     {"admin": 409, "sales_director": 409, "senior_broker": 409, "junior_broker": 409,
      "t2": 404}),
    ("DELETE", "/api/inventory/properties/{spare}", None, T1_MANAGERS),
    ("POST", "/api/inventory/import-batches", None, {"admin": 422, "sales_director": 422,
                                                     "senior_broker": 403, "junior_broker": 403,
                                                     "t2": 422}),
    ("GET", "/api/inventory/import-batches", None, MANAGERS_200),
    ("GET", "/api/inventory/import-batches/{batch}", None, IMPORTS_404),
    ("POST", "/api/crm/imports", None, {"admin": 422, "sales_director": 422,
                                        "senior_broker": 403, "junior_broker": 403, "t2": 422}),
    ("GET", "/api/crm/imports", None, MANAGERS_200),
    ("GET", "/api/crm/imports/{batch}", None, IMPORTS_404),
    ("PUT", "/api/crm/imports/{batch}/review-proposal", {"decision": "accepted"}, IMPORTS_404),
    ("POST", "/api/crm/imports/{batch}/commit", None, IMPORTS_404),
]
INVENTORY_PLACEHOLDERS = {"{unit}": "{property_id}", "{spare}": "{property_id}",
                          "{held}": "{property_id}", "{spare_media}": "{media_asset_id}",
                          "{batch}": "{batch_id}"}


def _inventory_names(caller: str) -> dict[str, str]:
    return {"unit": "u1", "spare": f"spare-{caller}", "spare_media": f"media-{caller}",
            "held": "u-held", "batch": "no-such-batch"}


def _served_name(path: str) -> str:
    for placeholder, name in INVENTORY_PLACEHOLDERS.items():
        path = path.replace(placeholder, name)
    return path


async def _seed_inventory(server: HubServer) -> None:
    base = {"tenant_id": "t1", "owner_id": "t1-sales_director"}
    unit = {**base, "project_id": "pr", "configuration": "3BHK"}
    await create_many(server.hub.writer, Principal("t1", "t1-sales_director",
                                                   Role.SALES_DIRECTOR), [
        ("projects", "pr", {**base, "name": "Marina Heights"}),
        ("units", "u1", {**unit, "unit_no": "A-1"}),
        ("units", "u-held", {**unit, "unit_no": "A-2"}),
        ("unit_holds", "u-held", {**base, "unit_id": "u-held", "holder_id": "t1-junior2",
                                  "claims": ["t1-junior2"]}),
        *[("units", f"spare-{c}", {**unit, "unit_no": f"S-{c}"}) for c in CALLERS],
        *[("unit_media", f"media-{c}", {**base, "unit_id": "u1", "uri": f"https://cdn.test/{c}"})
          for c in CALLERS],
    ])


MANAGERS_ONLY_LEAD = {"admin": 200, "sales_director": 200, "senior_broker": 404,
                      "junior_broker": 404, "t2": 404}
"""A record about junior2's lead: only managers reach it; anyone else does not see it."""
ROUTES: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    # (method, path, body, expected status by caller: t1 roles, and "t2" (another tenant's
    # director)); {client} is a t1 client owned by junior2 (team south), {lead} their lead.
    ("GET", "/api/auth/me", None, {"admin": 200, "sales_director": 200, "senior_broker": 200,
                                    "junior_broker": 200, "t2": 200}),
    ("GET", "/api/auth/users", None, {"admin": 200, "sales_director": 200,
                                       "senior_broker": 403, "junior_broker": 403, "t2": 200}),
    ("GET", "/api/admin-surface/health", None, {"admin": 200, "sales_director": 200,
                                                 "senior_broker": 403, "junior_broker": 403,
                                                 "t2": 200}),
    ("GET", "/api/admin-surface/installs", None, {"admin": 200, "sales_director": 200,
                                                   "senior_broker": 403, "junior_broker": 403,
                                                   "t2": 200}),
    ("POST", "/api/devices/pairing-codes", {"user_id": "t1-junior2"},
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/devices/pairing-codes", {"user_id": "t1-admin"},
     {"admin": 200, "sales_director": 403, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/devices/pairing-qr", {"user_id": "{broker}"},
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/devices/pairing-qr.png", {"user_id": "{admin2}"},
     {"admin": 200, "sales_director": 403, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/devices/{device}/revoke", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("GET", "/api/crm/contacts", None, {r: 200 for r in ("admin", "sales_director",
                                                           "senior_broker", "junior_broker",
                                                           "t2")}),
    ("POST", "/api/crm/contacts", {"values": {"full_name": "Walk In"}},
     {r: 201 for r in ("admin", "sales_director", "senior_broker", "junior_broker", "t2")}),
    ("GET", "/api/crm/contacts/{client}", None, {"admin": 200, "sales_director": 200,
                                                  "senior_broker": 200, "junior_broker": 200,
                                                  "t2": 404}),
    ("GET", "/api/crm/client-360/{client}", None, {"admin": 200, "sales_director": 200,
                                                    "senior_broker": 200, "junior_broker": 200,
                                                    "t2": 404}),
    ("GET", "/api/crm/opportunities", None, {r: 200 for r in ("admin", "sales_director",
                                                                "senior_broker", "junior_broker",
                                                                "t2")}),
    ("GET", "/api/crm/tasks", None, {r: 200 for r in ("admin", "sales_director",
                                                        "senior_broker", "junior_broker", "t2")}),
    ("POST", "/api/crm/tasks", {"values": {"title": "Call"}},
     {r: 201 for r in ("admin", "sales_director", "senior_broker", "junior_broker", "t2")}),
    ("GET", "/api/crm/kanban", None, {r: 200 for r in ("admin", "sales_director",
                                                         "senior_broker", "junior_broker",
                                                         "t2")}),
    ("GET", "/api/crm/qd/{client}", None, {"admin": 200, "sales_director": 200,
                                           "senior_broker": 200, "junior_broker": 200,
                                           "t2": 404}),
    ("GET", "/api/crm/client-data", None, {r: 200 for r in ("admin", "sales_director",
                                                              "senior_broker", "junior_broker",
                                                              "t2")}),
    ("GET", "/api/crm/client-data/{client}", None, {"admin": 200, "sales_director": 200,
                                                     "senior_broker": 200, "junior_broker": 200,
                                                     "t2": 404}),
    ("PATCH", "/api/crm/client-data/{client}", {"values": {"segment": "vip"}},
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("GET", "/api/crm/client-data/{client}/timeline", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 200, "junior_broker": 200,
      "t2": 404}),
    ("GET", "/api/crm/client-data/{client}/tasks", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 200, "junior_broker": 200,
      "t2": 404}),
    ("POST", "/api/crm/client-data/{client}/tasks", {"values": {"title": "Call"}},
     {"admin": 201, "sales_director": 201, "senior_broker": 201, "junior_broker": 201,
      "t2": 404}),
    ("GET", "/api/sentinel/qd-score/{lead}", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/sentinel/consent", {"session_id": "s-{caller}", "person_id": "{client}"},
     {"admin": 201, "sales_director": 201, "senior_broker": 201, "junior_broker": 201,
      "t2": 404}),
    ("POST", "/api/sentinel/consent", {"session_id": "s-{caller}-2", "lead_id": "{lead}"},
     {"admin": 201, "sales_director": 201, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/sentinel/session/complete",
     {"session_id": "s-consented", "qd": 50, "lead_id": "{lead}"},
     {"admin": 201, "sales_director": 201, "senior_broker": 404, "junior_broker": 404,
      "t2": 403}),
    ("POST", "/api/sentinel/session/complete",
     {"session_id": "s-consented", "qd": 50, "person_id": "p-t2"},
     {"admin": 404, "sales_director": 404, "senior_broker": 404, "junior_broker": 404,
      "t2": 403}),
    ("POST", "/api/sentinel/session/summaries",
     {"session_id": "s-consented", "person_id": "p-t2", "seconds": [
         {"session_id": "s-consented", "second": 0, "frames": 2, "face_frames": 2}]},
     {"admin": 404, "sales_director": 404, "senior_broker": 404, "junior_broker": 404,
      "t2": 403}),
    ("POST", "/api/sentinel/tag-lead", {"session_id": "s-consented", "lead_id": "{lead}"},
     {"admin": 200, "sales_director": 200, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/sentinel/consent/revoke", {"person_id": "{client}"},
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    # Accounts: {broker} is a fresh junior broker of t1 per cell, {admin2} a fresh admin.
    ("POST", "/api/auth/users", {"email": "new-{caller}@t.test", "password": "long enough pw",
                                 "full_name": "New", "role": "JUNIOR_BROKER"},
     {"admin": 201, "sales_director": 201, "senior_broker": 403, "junior_broker": 403,
      "t2": 201}),
    ("POST", "/api/auth/users", {"email": "boss-{caller}@t.test", "password": "long enough pw",
                                 "full_name": "New", "role": "ADMIN"},
     {"admin": 201, "sales_director": 403, "senior_broker": 403, "junior_broker": 403,
      "t2": 403}),
    ("PATCH", "/api/auth/users/{broker}", {"full_name": "Renamed"},
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("PATCH", "/api/auth/users/{broker}", {"role": "SALES_DIRECTOR"},
     {"admin": 200, "sales_director": 403, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/auth/users/{broker}/disable", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/auth/users/{admin2}/disable", None,
     {"admin": 200, "sales_director": 403, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    # {me}: the caller: nobody demotes or disables themselves, admins included
    ("PATCH", "/api/auth/users/{me}", {"role": "JUNIOR_BROKER"}, {r: 403 for r in CALLERS}),
    ("POST", "/api/auth/users/{me}/disable", None, {r: 403 for r in CALLERS}),
    ("POST", "/api/auth/users/{broker}/enable", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/auth/users/{broker}/password", {"password": "another long one"},
     {"admin": 200, "sales_director": 200, "senior_broker": 403, "junior_broker": 403,
      "t2": 404}),
    ("POST", "/api/auth/password", {"current_password": "wrong", "new_password": "x" * 12},
     {"admin": 401, "sales_director": 401, "senior_broker": 401, "junior_broker": 401,
      "t2": 401}),
    # the GPU front: managers see the queues and switch the mode; a job is its owner's (none
    # exists here: 404 for everyone); bodies that do not validate are 422 after the role check
    ("GET", "/api/admin-surface/queues", None, MANAGERS_200),
    ("GET", "/api/admin-surface/gpu-mode", None, MANAGERS_200),
    ("POST", "/api/admin-surface/gpu-mode", {"mode": "no-such-mode"},
     {"admin": 422, "sales_director": 422, "senior_broker": 403, "junior_broker": 403,
      "t2": 422}),
    ("GET", "/api/runtime/llm/providers", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/runtime/llm/chat", {"messages": []}, {r: 422 for r in CALLERS}),
    ("POST", "/api/runtime/llm/batch", {"items": []}, {r: 422 for r in CALLERS}),
    ("GET", "/api/runtime/llm/jobs/{job}", None, {r: 404 for r in CALLERS}),
    ("GET", "/api/runtime/llm/jobs/{job}/results", None, {r: 404 for r in CALLERS}),
    ("GET", "/api/runtime/jobs", None, {r: 200 for r in CALLERS}),
    ("GET", "/api/runtime/jobs/{job}", None, {r: 404 for r in CALLERS}),
    ("POST", "/api/runtime/jobs/{job}/cancel", None, {r: 404 for r in CALLERS}),
    ("POST", "/api/dream-weaver", None, {r: 422 for r in CALLERS}),
    ("GET", "/api/dream-weaver/status/{job}", None, {r: 404 for r in CALLERS}),
    ("GET", "/api/dream-weaver/result/{job}", None, {r: 404 for r in CALLERS}),
    # The WebOS pipeline: {mylead}, {rlead} and {opp} belong to the junior (team north); rows
    # whose first success changes the record list the brokers first.
    ("GET", "/api/leads", None, {r: 200 for r in CALLERS}),
    ("GET", "/api/leads/{lead}", None, {"admin": 200, "sales_director": 200,
                                        "senior_broker": 404, "junior_broker": 404, "t2": 404}),
    ("GET", "/api/leads/{mylead}", None, {"admin": 200, "sales_director": 200,
                                          "senior_broker": 200, "junior_broker": 200,
                                          "t2": 404}),
    ("PATCH", "/api/leads/{mylead}", {"values": {"notes": "by {caller}"}},
     {"admin": 200, "sales_director": 200, "senior_broker": 200, "junior_broker": 200,
      "t2": 404}),
    ("PATCH", "/api/leads/{lead}", {"values": {"notes": "by {caller}"}},
     {"admin": 200, "sales_director": 200, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/leads/{mylead}/stage", {"stage": "WON"},
     {"senior_broker": 403, "junior_broker": 403, "t2": 404, "admin": 200,
      "sales_director": 200}),
    ("POST", "/api/leads/{rlead}/reassign", {"owner_id": "t1-junior2"},
     {"senior_broker": 403, "junior_broker": 403, "t2": 404, "admin": 200,
      "sales_director": 200}),
    ("GET", "/api/opportunities", None, {r: 200 for r in CALLERS}),
    ("GET", "/api/opportunities/{opp}", None, {"admin": 200, "sales_director": 200,
                                               "senior_broker": 200, "junior_broker": 200,
                                               "t2": 404}),
    ("PATCH", "/api/opportunities/{opp}", {"values": {"value": 1e7}},
     {"senior_broker": 403, "junior_broker": 403, "t2": 404, "admin": 200,
      "sales_director": 200}),
    ("POST", "/api/opportunities/{opp}/stage", {"stage": "BOOKING"},
     {"senior_broker": 403, "junior_broker": 403, "t2": 404, "admin": 200,
      "sales_director": 200}),
    ("GET", "/api/kanban/board", None, {r: 200 for r in CALLERS}),
    ("GET", "/api/admin-surface/audit", None, MANAGERS_200),
    ("GET", "/api/devices", None, MANAGERS_200),
    ("GET", "/api/events?max_s=0", None, {r: 200 for r in CALLERS}),

    *INVENTORY_ROUTES,

    # comms: {thread} is a t1 conversation of junior2 (team south) with client c1
    ("GET", "/api/comms/threads", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/comms/threads", {"channel_id": "wa-t1", "phone": "+91 98765 00000"},
     {"admin": 201, "sales_director": 201, "senior_broker": 201, "junior_broker": 201,
      "t2": 404}),
    ("GET", "/api/comms/threads/{thread}", None, {"admin": 200, "sales_director": 200,
                                             "senior_broker": 404, "junior_broker": 404,
                                             "t2": 404}),
    ("GET", "/api/comms/threads/{thread}/messages", None,
     {"admin": 200, "sales_director": 200, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/comms/threads/{thread}/messages", {"body": "Hello"},
     {"admin": 201, "sales_director": 201, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/comms/threads/{thread}/link-person", {"person_id": "c1"},
     {"admin": 200, "sales_director": 200, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/comms/threads/{thread}/notes", {"text": "Prefers WhatsApp"},
     {"admin": 201, "sales_director": 201, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("POST", "/api/comms/threads/{thread}/tasks", {"title": "Call back"},
     {"admin": 201, "sales_director": 201, "senior_broker": 404, "junior_broker": 404,
      "t2": 404}),
    ("GET", "/api/comms/settings", None, MANAGERS_200),
    ("PATCH", "/api/comms/settings", {
        "channel_id": "wa-{caller}", "provider": "waha", "account": "s-{caller}",
        "base_url": "http://127.0.0.1:9", "api_key": "k", "webhook_secret": "s" * 16,
        "owner_id": "t1-junior2"},
     {"admin": 200, "sales_director": 403, "senior_broker": 403, "junior_broker": 403,
      "t2": 403}),
    # Mobile edge: {lead} is junior2's (team south); {event} an event on it, {insight} and
    # {appointment} a fresh open insight and appointment on it per cell, {decided} an insight
    # already acted on.
    ("GET", "/api/mobile-edge/events?lead_id={lead}", None, MANAGERS_ONLY_LEAD),
    ("POST", "/api/mobile-edge/events", {"lead_id": "{lead}", "channel": "call"},
     {**MANAGERS_ONLY_LEAD, "admin": 201, "sales_director": 201}),
    ("GET", "/api/mobile-edge/memory?lead_id={lead}", None, MANAGERS_ONLY_LEAD),
    ("POST", "/api/mobile-edge/imports", {"lead_id": "{lead}", "kind": "note",
                                          "occurred_at": "2026-11-20T10:00:00Z",
                                          "text": "Met at the site"},
     {**MANAGERS_ONLY_LEAD, "admin": 201, "sales_director": 201}),
    ("POST", "/api/mobile-edge/notes", {"lead_id": "{lead}", "text": "Call back"},
     {**MANAGERS_ONLY_LEAD, "admin": 201, "sales_director": 201}),
    ("GET", "/api/mobile-edge/calendar", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/mobile-edge/calendar", {"title": "Visit", "starts_at": "2026-11-20T10:00:00Z"},
     {r: 201 for r in CALLERS}),
    ("POST", "/api/mobile-edge/calendar", {"title": "Visit", "lead_id": "{lead}",
                                           "starts_at": "2026-11-20T10:00:00Z"},
     {**MANAGERS_ONLY_LEAD, "admin": 201, "sales_director": 201}),
    ("PATCH", "/api/mobile-edge/calendar/{appointment}", {"location": "Lobby"},
     MANAGERS_ONLY_LEAD),
    ("DELETE", "/api/mobile-edge/calendar/{appointment}", None, MANAGERS_ONLY_LEAD),
    ("GET", "/api/mobile-edge/transcripts/{event}", None, MANAGERS_ONLY_LEAD),
    ("GET", "/api/mobile-edge/insights/{lead}", None, MANAGERS_ONLY_LEAD),
    ("POST", "/api/mobile-edge/insights/{insight}/act", {"action": "act"}, MANAGERS_ONLY_LEAD),
    ("POST", "/api/mobile-edge/insights/{decided}/act", {"action": "dismiss"},
     {**MANAGERS_ONLY_LEAD, "admin": 409, "sales_director": 409}),
    ("GET", "/api/mobile-edge/alerts", None, {r: 200 for r in CALLERS}),
    ("POST", "/api/mobile-edge/session", {"surface_id": "s-{caller}", "surface": "webos"},
     {r: 200 for r in CALLERS}),
    ("POST", "/api/auth/logout", None,  # last: the callers' tokens end here
     {"admin": 200, "sales_director": 200, "senior_broker": 200, "junior_broker": 200,
      "t2": 200}),
]
ROWS_ELSEWHERE = ("/api/oracle/",)
PUBLIC = {("GET", "/health"), ("POST", "/api/auth/login"), ("POST", "/api/devices/pair"),
          ("POST", "/api/auth/refresh"), ("GET", "/api/hub/identity"), ("GET", "/metrics"),
          ("POST", "/api/comms/webhooks/{provider}")}
"""Routes without a user token (``/metrics``: a scraper's token, or this machine only; comms
webhooks: the provider's signature or secret)."""


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


async def test_every_route_by_role_tenant_and_token() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
        await create_many(server.hub.writer, director, [
            ("people", "c1", {"tenant_id": "t1", "full_name": "Zara", "owner_id": "t1-junior2",
                              "team_id": "south"}),
            ("leads", "l1", {"tenant_id": "t1", "person_id": "c1", "owner_id": "t1-junior2",
                             "team_id": "south"}),
            *[("leads", lead_id, {"tenant_id": "t1", "person_id": "c1", "owner_id": OWNER,
                                  "team_id": TEAM, "stage": "QUALIFIED"})
              for lead_id in ("lj", "lr")],
            ("opportunities", "oj", {"tenant_id": "t1", "person_id": "c1", "lead_id": "lj",
                                     "owner_id": OWNER, "team_id": TEAM, "stage": "PROPOSAL"}),
            ("consents", "k1", {"tenant_id": "t1", "session_id": "s-consented",
                                "person_id": "c1", "granted_at": "2026-11-20T10:00:00Z",
                                "owner_id": "t1-junior2", "team_id": "south"}),
            ("perception_sessions", "s-consented", {
                "tenant_id": "t1", "person_id": "c1", "consent_id": "k1",
                "started_at": "2026-11-20T10:00:00Z", "owner_id": "t1-junior2"}),
        ])
        on_lead = {"tenant_id": "t1", "owner_id": "t1-junior2", "team_id": "south",
                   "lead_id": "l1"}
        await create_many(server.hub.writer, director, [
            ("comm_events", "ev1", {**on_lead, "channel": "call",
                                    "occurred_at": "2026-11-20T10:00:00Z"}),
            ("insights", "ins-decided", {**on_lead, "title": "Call", "status": "acted",
                                         "decided_by": "t1-junior2"}),
            *[("insights", f"ins-{c}", {**on_lead, "title": "Call"}) for c in CALLERS],
            *[("calendar_events", f"cal-{c}", {**on_lead, "title": "Visit",
                                               "starts_at": "2026-11-20T10:00:00Z"})
              for c in CALLERS]])
        await create_many(server.hub.writer, Principal("t2", "t2-admin", Role.ADMIN), [
            ("people", "p-t2", {"tenant_id": "t2", "full_name": "Other"})])
        await _seed_inventory(server)

        await server.hub.db.pool.execute(
            "INSERT INTO hub_comms_channels (channel_id, tenant_id, provider, account, base_url,"
            " api_key, webhook_secret, owner_id) VALUES ('wa-t1', 't1', 'waha', 'default', "
            "'http://127.0.0.1:9', 'k', 'secret-secret-secret', 't1-junior2')")
        await create_many(server.hub.writer, director, [
            ("comms_threads", "th1", {"tenant_id": "t1", "channel_id": "wa-t1",
                                      "phone": "+919876500001", "person_id": "c1",
                                      "owner_id": "t1-junior2", "team_id": "south"})])
        callers = {r: await login(server, f"{r}@t1.test") for r in (
            "admin", "sales_director", "senior_broker", "junior_broker")}
        callers["t2"] = await login(server, "sales_director@t2.test")
        served = {(m.upper(), path) for path, ops in (await http.get("/openapi.json")).json()[
            "paths"].items() for m in ops}
        listed = {(m, path.split("?")[0].replace("{device}", "{device_id}")
                   .replace("{client}", "{person_id}").replace("{event}", "{event_id}")
                   .replace("{insight}", "{recommendation_id}")
                   .replace("{decided}", "{recommendation_id}")
                   .replace("{appointment}", "{calendar_event_id}")
                   .replace("{lead}", "{lead_id}").replace("{broker}", "{user_id}")
                   .replace("{admin2}", "{user_id}").replace("{me}", "{user_id}")
                   .replace("{job}", "{job_id}")
                   .replace("{mylead}", "{lead_id}").replace("{rlead}", "{lead_id}")
                   .replace("{opp}", "{opportunity_id}")
                   .replace("{thread}", "{thread_id}"))
                  for m, path, _, _ in ROUTES}
        listed = {(m, _served_name(path)) for m, path in listed}
        password_hash = await server.hub.db.pool.fetchval(
            "SELECT password_hash FROM hub_users WHERE user_id = 't1-junior2'")

        async def fresh_user(role: Role) -> str:
            user_id = f"fresh-{next(_ids)}"
            await server.hub.db.pool.execute(
                "INSERT INTO hub_users (tenant_id, user_id, email, full_name, password_hash, role)"
                " VALUES ('t1', $1, $1 || '@t1.test', 'Fresh', $2, $3)", user_id, password_hash,
                role.value)
            return user_id

        # Every route has its row (the Oracle's: token rows only, below; their sharing rules
        # have their own tests).
        assert {(m, path) for m, path in served if not path.startswith(ROWS_ELSEWHERE)} == \
            listed | PUBLIC

        got, want = {}, {}
        for n, (method, path, body, expected) in enumerate(ROUTES):
            for caller, status in expected.items():
                names = {"client": "c1", "lead": "l1", "device": "none", "caller": caller,
                         "job": "no-such-job", "mylead": "lj", "rlead": "lr", "opp": "oj",
                         "event": "ev1", "insight": f"ins-{caller}", "thread": "th1",
                         "appointment": f"cal-{caller}", "decided": "ins-decided",
                         "broker": await fresh_user(Role.JUNIOR_BROKER),
                         "admin2": await fresh_user(Role.ADMIN),
                         "me": "t2-sales_director" if caller == "t2" else f"t1-{caller}"}
                names.update(_inventory_names(caller))
                if "{device}" in path:
                    names["device"] = (await pair_device(
                        server, "junior2@t1.test", "t1-junior2", 9000 + n * 10 + len(got) % 10
                    )).device_id
                r = await http.request(method, _fill(path, names), json=_fill(body, names),
                                       headers=callers[caller])
                got[n, method, path, caller] = r.status_code
                want[n, method, path, caller] = status
        assert got == want

        # Without a valid token every route but the public ones is 401, whatever the role
        # (every served route, the Oracle canvas routes included).
        now = int(time.time())
        claims = {"sub": "t1-admin", "tid": "t1", "role": "ADMIN", "ver": 0, "iat": now - 100}
        bad_tokens = {
            "none": {},
            "expired": {"Authorization": "Bearer " + jwt.encode(
                {**claims, "exp": now - 10}, server.hub.secret_key, algorithm="HS256")},
            "forged": {"Authorization": "Bearer " + jwt.encode(
                {**claims, "exp": now + 600}, "x" * 48, algorithm="HS256")},
            "garbage": {"Authorization": "Bearer not.a.token"},
        }
        for (method, path), (kind, headers) in itertools.product(
                sorted(served - PUBLIC), bad_tokens.items()):
            r = await http.request(method, re.sub(r"\{[^}]+\}", "x", path),
                                   json=None if method in ("GET", "DELETE") else {},
                                   headers=headers)
            assert r.status_code == 401, (method, path, kind, r.text)


async def _device_refused(device: hubkit.TestDevice) -> str:
    try:
        await device.connect()
    except ConnectionRefusedError as exc:
        return str(exc).split(":")[0]
    await device.close()
    return OK


async def test_revoked_devices_and_disabled_users_are_refused_everywhere() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        admin = await login(server, "admin@t1.test")
        junior = await login(server, "junior_broker@t1.test")
        revoked = await pair_device(server, "junior2@t1.test", "t1-junior2", 8001)
        disabled = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 8002)
        r = await http.post(f"/api/devices/{revoked.device_id}/revoke", headers=admin)
        assert r.status_code == 200
        r = await http.post("/api/auth/users/t1-junior_broker/disable", headers=admin)
        assert r.status_code == 200
        assert await _device_refused(revoked) == "revoked"
        assert await _device_refused(disabled) == "user_inactive"
        for method, path, body, _ in ROUTES:
            names = {"client": "c1", "lead": "l1", "device": "none", "caller": "off",
                     "thread": "th1",
                     "broker": "t1-junior2", "admin2": "t1-admin", "job": "no-such-job",
                     "me": "t1-junior_broker",
                     "mylead": "lj", "rlead": "lr", "opp": "oj",
                     "event": "ev1", "insight": "ins-off", "appointment": "cal-off",
                     "decided": "ins-decided"}
            names.update(_inventory_names("off"))
            r = await http.request(method, _fill(path, names), json=_fill(body, names),
                                   headers=junior)
            assert (r.status_code, r.json()["error"]) == (401, "user_inactive"), path
        r = await http.post("/api/auth/login", json={"email": "junior_broker@t1.test",
                                                     "password": "correct horse battery staple"})
        assert r.status_code == 401



async def test_the_admin_surface_shows_the_callers_tenant_only() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        devices = [await pair_device(server, email, user_id, 8100 + n) for n, (email, user_id)
                   in enumerate([("junior_broker@t1.test", "t1-junior_broker"),
                                 ("junior2@t1.test", "t1-junior2"),
                                 ("junior_broker@t2.test", "t2-junior_broker")])]
        for d in devices:
            await d.connect()
        seen = {}
        for email in ("admin@t1.test", "sales_director@t1.test", "sales_director@t2.test"):
            headers = await login(server, email)
            health = (await http.get("/api/admin-surface/health", headers=headers)).json()
            installs = (await http.get("/api/admin-surface/installs", headers=headers)).json()
            seen[email] = (health["live_connections"], (health["database"] or "")[:10],
                           sorted(i["user_id"] for i in installs))
        for d in devices:
            await d.close()
        # Each caller counts and lists their own tenant's devices; only an admin sees versions.
        assert seen == {
            "admin@t1.test": (2, "PostgreSQL", ["t1-junior2", "t1-junior_broker"]),
            "sales_director@t1.test": (2, "", ["t1-junior2", "t1-junior_broker"]),
            "sales_director@t2.test": (1, "", ["t2-junior_broker"]),
        }
