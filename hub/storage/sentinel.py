"""Sentinel's reads: consents, perception sessions, the results a purge tombstones and the
scores a lead's QD follows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from hub.database import Database
from schema import collection
from schema.biometrics import RESULT_KEYS

Records = list[asyncpg.Record]


class SentinelStore:
    """Reads of the consent, perception and QD tables (writes are CRDT writes)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def active_consent(self, tenant_id: str, session_id: str) -> dict[str, Any] | None:
        """The session's newest consent that is granted and neither revoked nor deleted."""
        row = await self._db.pool.fetchrow(
            "SELECT * FROM intel_biometric_consent WHERE tenant_id = $1 AND session_id = $2 AND "
            "NOT deleted AND revoked_at IS NULL ORDER BY granted_at DESC LIMIT 1",
            tenant_id, session_id)
        return dict(row) if row else None

    async def live_consents(self, tenant_id: str, person_id: str | None,
                            session_id: str | None) -> Records:
        """``id, session_id`` of the unrevoked consents of a person or a session."""
        rows: Records = await self._db.pool.fetch(
            "SELECT id, session_id FROM intel_biometric_consent WHERE tenant_id = $1 AND NOT "
            "deleted AND revoked_at IS NULL AND (person_id = $2 OR session_id = $3)",
            tenant_id, person_id, session_id)
        return rows

    async def person_owner(self, tenant_id: str, person_id: str) -> dict[str, Any] | None:
        """``owner_id, team_id`` of a client (deleted or not)."""
        row = await self._db.pool.fetchrow(
            "SELECT owner_id, team_id FROM crm_people WHERE tenant_id = $1 AND id = $2",
            tenant_id, person_id)
        return dict(row) if row else None

    async def session_owner(self, tenant_id: str, session_id: str | None) -> dict[str, Any] | None:
        """``owner_id, team_id`` of whoever recorded a session (or its consent)."""
        row = await self._db.pool.fetchrow(
            "SELECT owner_id, team_id FROM intel_perception_sessions WHERE tenant_id = $1 AND "
            "id = $2 UNION ALL SELECT owner_id, team_id FROM intel_biometric_consent WHERE "
            "tenant_id = $1 AND session_id = $2 LIMIT 1", tenant_id, session_id)
        return dict(row) if row else None

    async def session_exists(self, tenant_id: str, session_id: str) -> bool:
        """A perception session with this id was stored (deleted or not)."""
        count: int = await self._db.pool.fetchval(
            "SELECT count(*) FROM intel_perception_sessions WHERE tenant_id = $1 AND id = $2",
            tenant_id, session_id)
        return bool(count)

    async def live_results(self, tenant_id: str, coll_name: str, person_id: str | None,
                           sessions: Sequence[str]) -> list[str]:
        """Ids of the live perception results (`schema.biometrics.RESULT_KEYS`) of a person
        or of these sessions."""
        table, key = collection(coll_name).table, RESULT_KEYS[coll_name]
        rows = await self._db.pool.fetch(
            f"SELECT id FROM {table} WHERE tenant_id = $1 AND NOT deleted AND "
            f"(person_id = $2 OR {key} = ANY($3::text[]))", tenant_id, person_id, list(sessions))
        return [r["id"] for r in rows]

    async def ended_consents(self, tenant_id: str, consent_ids: Sequence[str]) -> Records:
        """``person_id, session_id`` of these consents that are revoked or deleted."""
        rows: Records = await self._db.pool.fetch(
            "SELECT person_id, session_id FROM intel_biometric_consent WHERE tenant_id = $1 AND "
            "id = ANY($2::text[]) AND (revoked_at IS NOT NULL OR deleted)",
            tenant_id, list(consent_ids))
        return rows

    async def lead_scores(self, tenant_id: str, score_ids: Sequence[str]) -> Records:
        """These QD scores that name a lead: ``id, person_id, lead_id, score, deleted``."""
        rows: Records = await self._db.pool.fetch(
            "SELECT id, person_id, lead_id, score, deleted FROM intel_qd_scores WHERE "
            "tenant_id = $1 AND id = ANY($2::text[]) AND lead_id IS NOT NULL",
            tenant_id, list(score_ids))
        return rows

    async def leads_qd(self, tenant_id: str, lead_ids: Sequence[str]) -> Records:
        """``id, person_id, last_qd, deleted`` of these leads."""
        rows: Records = await self._db.pool.fetch(
            "SELECT id, person_id, last_qd, deleted FROM crm_leads WHERE tenant_id = $1 AND "
            "id = ANY($2::text[])", tenant_id, list(lead_ids))
        return rows

    async def latest_scores(self, tenant_id: str, lead_ids: Sequence[str]) -> Records:
        """Each lead's newest live score: ``lead_id, score, deleted``."""
        rows: Records = await self._db.pool.fetch(
            "SELECT DISTINCT ON (lead_id) lead_id, score, deleted FROM intel_qd_scores "
            "WHERE tenant_id = $1 AND lead_id = ANY($2::text[]) AND NOT deleted "
            "AND score IS NOT NULL ORDER BY lead_id, scored_at DESC, id DESC",
            tenant_id, list(lead_ids))
        return rows
