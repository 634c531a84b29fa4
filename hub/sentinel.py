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
from schema import collection
from schema.biometrics import RESULT_KEYS, purge_values
from schema.qd import last_qd_change, person_from_lead

if TYPE_CHECKING:
    from hub.service import Hub


async def active_consent(hub: Hub, tenant_id: str, session_id: str) -> dict[str, Any] | None:
    """The session's consent record when it is granted and neither revoked nor deleted."""
    row = await hub.db.pool.fetchrow(
        "SELECT * FROM intel_biometric_consent WHERE tenant_id = $1 AND session_id = $2 AND "
        "NOT deleted AND revoked_at IS NULL ORDER BY granted_at DESC LIMIT 1",
        tenant_id, session_id)
    return dict(row) if row else None


async def revoke(hub: Hub, principal: Principal, *, person_id: str | None,
                 session_id: str | None) -> dict[str, int]:
    """Mark the matching consents revoked and purge every result they covered, once the policy
    allows it: a client's by whoever may change the client, a session's by whoever recorded it.
    The writes that follow are the hub's, carried out for an allowed request."""
    await _check_revoke(hub, principal, person_id=person_id, session_id=session_id)
    principal = Principal(principal.tenant_id, principal.user_id, Role.ADMIN, principal.team_id)
    rows = await hub.db.pool.fetch(
        "SELECT id, session_id FROM intel_biometric_consent WHERE tenant_id = $1 AND NOT deleted "
        "AND revoked_at IS NULL AND (person_id = $2 OR session_id = $3)",
        principal.tenant_id, person_id, session_id)
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
        person = await hub.db.pool.fetchrow(
            "SELECT owner_id, team_id FROM crm_people WHERE tenant_id = $1 AND id = $2",
            principal.tenant_id, person_id)
        if person is None:
            raise NotFound(f"no client {person_id}")
        check_purge(principal, dict(person))
        return
    recorded = await hub.db.pool.fetchrow(
        "SELECT owner_id, team_id FROM intel_perception_sessions WHERE tenant_id = $1 AND id = $2"
        " UNION ALL SELECT owner_id, team_id FROM intel_biometric_consent WHERE tenant_id = $1"
        " AND session_id = $2 LIMIT 1", principal.tenant_id, session_id)
    if recorded is None:
        raise NotFound(f"no perception session {session_id}")
    check_revoke(principal, dict(recorded))


async def purge(hub: Hub, principal: Principal, *, person_id: str | None,
                sessions: set[str]) -> int:
    """Tombstone every live perception result of ``person_id`` or of ``sessions``."""
    writes: list[tuple[str, str, dict[str, Any]]] = []
    for coll_name, key in RESULT_KEYS.items():
        table = collection(coll_name).table
        rows = await hub.db.pool.fetch(
            f"SELECT id FROM {table} WHERE tenant_id = $1 AND NOT deleted AND "
            f"(person_id = $2 OR {key} = ANY($3::text[]))",
            principal.tenant_id, person_id, sorted(sessions))
        writes += [(coll_name, r["id"], purge_values(coll_name)) for r in rows]
    if writes:
        await hub.writer.write_many(principal, writes, create=False)
    return len(writes)


async def purge_after_sync(hub: Hub, principal: Principal, consent_ids: list[str]) -> int:
    """A device pushed changes to these consents: purge for any that are now revoked."""
    rows = await hub.db.pool.fetch(
        "SELECT person_id, session_id FROM intel_biometric_consent WHERE tenant_id = $1 AND "
        "id = ANY($2::text[]) AND (revoked_at IS NOT NULL OR deleted)",
        principal.tenant_id, consent_ids)
    purged = 0
    for row in rows:
        purged += await purge(hub, principal, person_id=row["person_id"],
                              sessions={row["session_id"]})
    return purged


async def follow_scores(hub: Hub, tenant_id: str, score_ids: list[str]) -> int:
    """After QD scores commit: attach each to its lead's person and move each of their leads'
    ``last_qd`` to the lead's latest score (`schema.qd`), written by the hub itself, so a score
    from a device that does not hold the lead still reaches both. Returns the writes made."""
    scores = await hub.db.pool.fetch(
        "SELECT id, person_id, lead_id, score, deleted FROM intel_qd_scores WHERE tenant_id = $1 "
        "AND id = ANY($2::text[]) AND lead_id IS NOT NULL", tenant_id, score_ids)
    lead_ids = sorted({s["lead_id"] for s in scores})
    if not lead_ids:
        return 0
    leads = {r["id"]: dict(r) for r in await hub.db.pool.fetch(
        "SELECT id, person_id, last_qd, deleted FROM crm_leads WHERE tenant_id = $1 AND "
        "id = ANY($2::text[])", tenant_id, lead_ids)}
    latest = await hub.db.pool.fetch(
        "SELECT DISTINCT ON (lead_id) lead_id, score, deleted FROM intel_qd_scores "
        "WHERE tenant_id = $1 AND lead_id = ANY($2::text[]) AND NOT deleted "
        "AND score IS NOT NULL ORDER BY lead_id, scored_at DESC, id DESC", tenant_id, lead_ids)
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
