"""Sentinel on the hub: consent lookups and the purge that follows a revocation.

A purge is a set of ordinary CRDT writes by the hub (tombstones with the biometric-derived
values cleared, `schema.biometrics`), so it reaches every device that holds the results.
It runs when consent is revoked through the REST API and when a device's revocation arrives
through sync — whichever door the revocation came in, results made on other kiosks go too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.errors import NotFound
from core.identity import Principal, Role
from hub.policy import check_purge, check_revoke
from schema.biometrics import RESULT_KEYS, purge_values
from schema.qd import last_qd_change, person_from_lead

if TYPE_CHECKING:
    from hub.service import Hub


async def active_consent(hub: Hub, tenant_id: str, session_id: str) -> dict[str, Any] | None:
    """The session's consent record when it is granted and neither revoked nor deleted."""
    return await hub.storage.sentinel.active_consent(tenant_id, session_id)


async def revoke(hub: Hub, principal: Principal, *, person_id: str | None,
                 session_id: str | None) -> dict[str, int]:
    """Mark the matching consents revoked and purge every result they covered, once the policy
    allows it: a client's by whoever may change the client, a session's by whoever recorded it.
    The writes that follow are the hub's, carried out for an allowed request."""
    await _check_revoke(hub, principal, person_id=person_id, session_id=session_id)
    principal = Principal(principal.tenant_id, principal.user_id, Role.ADMIN, principal.team_id)
    rows = await hub.storage.sentinel.live_consents(principal.tenant_id, person_id, session_id)
    now = datetime.now(UTC).isoformat()
    if rows:
        await hub.writer.write_many(
            principal, [("consents", r["id"], {"revoked_at": now}) for r in rows], create=False)
    sessions = {r["session_id"] for r in rows} | ({session_id} if session_id else set())
    purged = await purge(hub, principal, person_id=person_id, sessions=sessions)
    return {"consents_revoked": len(rows), "results_purged": purged}


async def _check_revoke(hub: Hub, principal: Principal, *, person_id: str | None,
                        session_id: str | None) -> None:
    if person_id is not None:
        person = await hub.storage.sentinel.person_owner(principal.tenant_id, person_id)
        if person is None:
            raise NotFound(f"no client {person_id}")
        check_purge(principal, person)
        return
    recorded = await hub.storage.sentinel.session_owner(principal.tenant_id, session_id)
    if recorded is None:
        raise NotFound(f"no perception session {session_id}")
    check_revoke(principal, recorded)


async def purge(hub: Hub, principal: Principal, *, person_id: str | None,
                sessions: set[str]) -> int:
    """Tombstone every live perception result of ``person_id`` or of ``sessions``."""
    writes: list[tuple[str, str, dict[str, Any]]] = []
    for coll_name in RESULT_KEYS:
        ids = await hub.storage.sentinel.live_results(principal.tenant_id, coll_name, person_id,
                                                      sorted(sessions))
        writes += [(coll_name, record_id, purge_values(coll_name)) for record_id in ids]
    if writes:
        await hub.writer.write_many(principal, writes, create=False)
    return len(writes)


async def purge_after_sync(hub: Hub, principal: Principal, consent_ids: list[str]) -> int:
    """A device pushed changes to these consents: purge for any that are now revoked."""
    rows = await hub.storage.sentinel.ended_consents(principal.tenant_id, consent_ids)
    purged = 0
    for row in rows:
        purged += await purge(hub, principal, person_id=row["person_id"],
                              sessions={row["session_id"]})
    return purged


async def follow_scores(hub: Hub, tenant_id: str, score_ids: list[str]) -> int:
    """After QD scores commit: attach each to its lead's person and move each of their leads'
    ``last_qd`` to the lead's latest score (`schema.qd`), written by the hub itself, so a score
    from a device that does not hold the lead still reaches both. Returns the writes made."""
    scores = await hub.storage.sentinel.lead_scores(tenant_id, score_ids)
    lead_ids = sorted({s["lead_id"] for s in scores})
    if not lead_ids:
        return 0
    leads = {r["id"]: dict(r) for r in await hub.storage.sentinel.leads_qd(tenant_id, lead_ids)}
    latest = await hub.storage.sentinel.latest_scores(tenant_id, lead_ids)
    writes: list[tuple[str, str, dict[str, Any]]] = []
    for score in scores:
        person = person_from_lead(score, leads.get(score["lead_id"]))
        if person is not None:
            writes.append(("qd_scores", score["id"], {"person_id": person}))
    for row in latest:
        change = last_qd_change(row, leads.get(row["lead_id"]))
        if change is not None:
            writes.append(("leads", row["lead_id"], change))
    if writes:
        await hub.writer.write_many(_the_hub(tenant_id), writes, create=False)
    return len(writes)


def _the_hub(tenant_id: str) -> Principal:
    """The hub itself, writing what follows from changes it has already admitted."""
    return Principal(tenant_id=tenant_id, user_id="hub", role=Role.ADMIN)
