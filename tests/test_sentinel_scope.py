"""Sentinel records pushed over sync name only a client and a lead their author may read, and
revoke or purge only what their author may purge: a junior's device cannot purge another
broker's client's QD scores nor tie a score to another broker's lead, while its own go through."""

from __future__ import annotations

from typing import Any

import pytest

from core.identity import Principal, Role
from hub.server import HubServer
from hub.store import create_many
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc
from tests import hubkit
from tests.hubkit import pair_device, running_hub

pytestmark = pytest.mark.anyio

ME, OTHER = "t1-junior_broker", "t1-junior2"
"""The pushing junior (team north) and the other broker (team south)."""
AT = "2026-11-20T10:00:00Z"


def _of(owner: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"tenant_id": "t1", "owner_id": owner,
            "team_id": "north" if owner == ME else "south", **values}


def _score(owner: str, person: str, lead: str, session: str, score: int) -> dict[str, Any]:
    return _of(owner, {"person_id": person, "lead_id": lead, "session_id": session,
                       "score": score, "scored_at": AT})


SEEDED: list[tuple[str, str, dict[str, Any]]] = [
    ("people", "p-mine", _of(ME, {"full_name": "Mine"})),
    ("leads", "l-mine", _of(ME, {"person_id": "p-mine", "last_qd": 40})),
    ("people", "p-other", _of(OTHER, {"full_name": "Theirs"})),
    ("leads", "l-other", _of(OTHER, {"person_id": "p-other", "last_qd": 80})),
    ("qd_scores", "q-other-1", _score(OTHER, "p-other", "l-other", "s-other", 80)),
    ("qd_scores", "q-other-2", _score(OTHER, "p-other", "l-other", "s-other", 70)),
    ("qd_scores", "q-mine", _score(ME, "p-mine", "l-mine", "s-mine", 40)),
    # consents the junior recorded: one for their own client, one for the other broker's
    ("consents", "c-mine", _of(ME, {"person_id": "p-mine", "session_id": "s-mine",
                                    "granted_at": AT})),
    ("consents", "c-other", _of(ME, {"person_id": "p-other", "session_id": "s-walk",
                                     "granted_at": AT})),
]
REVOKED = {"revoked_at": "2026-11-21T10:00:00Z"}


async def _push(device: hubkit.TestDevice, server: HubServer, guid: str,
                values: dict[str, Any], uid: str) -> p.PushItem:
    """Push ``values`` as an update made on the hub's current state of ``guid``."""
    doc = await server.hub.store.document("t1", guid)
    coll, rid = guid.split("/")
    item = p.PushItem(uid, guid, RecordDoc(collection(coll), rid, client_id=device.client_id,
                                           state=doc.state if doc else None).write(values))
    await device.push([item])
    return item


async def _verdicts(device: hubkit.TestDevice, uids: list[str]) -> dict[str, str]:
    await device.wait_for(lambda: all(u in device.acks or u in device.refusals for u in uids))
    return {u: "ok" if u in device.acks else device.refusals[u].reason for u in uids}


async def _live_scores(server: HubServer) -> dict[str, int | None]:
    rows = await server.hub.db.pool.fetch(
        "SELECT id, score FROM intel_qd_scores WHERE tenant_id = 't1' AND NOT deleted")
    return {r["id"]: r["score"] for r in rows}


async def test_a_junior_cannot_purge_or_score_another_brokers_client_over_sync() -> None:
    async with running_hub() as server:
        director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
        await create_many(server.hub.writer, director, SEEDED)
        device = await pair_device(server, "junior_broker@t1.test", ME, 7101)
        await device.connect()
        db = server.hub.db.pool

        refused = {
            "revoke-other": await _push(device, server, "consents/c-other", REVOKED,
                                        "revoke-other"),
            "delete-other": await _push(device, server, "consents/c-other", {"deleted": True},
                                        "delete-other"),
            "purge-score": await _push(device, server, "qd_scores/q-other-1",
                                       {"deleted": True, "score": None, "signals": []},
                                       "purge-score"),
            "score-other-lead": await _push(
                device, server, "qd_scores/q-new-other",
                _score(ME, "p-mine", "l-other", "s-new", 99), "score-other-lead"),
            "consent-other-lead": await _push(
                device, server, "consents/c-new-other",
                _of(ME, {"lead_id": "l-other", "session_id": "s-new", "granted_at": AT}),
                "consent-other-lead"),
        }
        verdicts = await _verdicts(device, list(refused))
        assert verdicts == dict.fromkeys(refused, "not_owner")
        assert "another broker" in device.refusals["score-other-lead"].message

        # Nothing was purged or followed: the other broker's scores, lead and consent stand.
        assert await _live_scores(server) == {"q-other-1": 80, "q-other-2": 70, "q-mine": 40}
        assert await db.fetchval("SELECT last_qd FROM crm_leads WHERE id = 'l-other'") == 80
        consent = await db.fetchrow(
            "SELECT revoked_at, deleted FROM intel_biometric_consent WHERE id = 'c-other'")
        assert dict(consent) == {"revoked_at": None, "deleted": False}
        assert not await db.fetchval(
            "SELECT count(*) FROM hub_documents WHERE guid IN ('qd_scores/q-new-other', "
            "'consents/c-new-other')")

        # Refused for good, as any refusal: the same ids get the same refusals again, and
        # the device was not charged as hostile (its session goes on).
        device.refusals.clear()
        await device.push(list(refused.values()))
        assert await _verdicts(device, list(refused)) == verdicts
        assert device.error is None

        # The junior's own client and lead: the score and the revocation go through, and
        # the revocation purges the client's scores.
        await _push(device, server, "qd_scores/q-new-mine",
                    _score(ME, "p-mine", "l-mine", "s-new", 55), "score-mine")
        assert await _verdicts(device, ["score-mine"]) == {"score-mine": "ok"}
        assert await db.fetchval("SELECT last_qd FROM crm_leads WHERE id = 'l-mine'") == 55
        await _push(device, server, "consents/c-mine", REVOKED, "revoke-mine")
        assert await _verdicts(device, ["revoke-mine"]) == {"revoke-mine": "ok"}
        assert await _live_scores(server) == {"q-other-1": 80, "q-other-2": 70}
        await device.close()
