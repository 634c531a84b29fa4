"""Sentinel on the hub: consent lookups and the purge that follows a revocation.

A purge is a set of ordinary CRDT writes by the hub (tombstones with the biometric-derived
values cleared, `schema.biometrics`), so it reaches every device that holds the results.
It runs when consent is revoked through the REST API and when a device's revocation arrives
through sync — whichever door the revocation came in, results made on other kiosks go too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.identity import Principal
from schema import collection
from schema.biometrics import RESULT_KEYS, purge_values

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
    """Mark the matching consents revoked and purge every result they covered."""
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
