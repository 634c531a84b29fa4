"""Import batches and their proposals (``hub_import_batches``, ``hub_import_proposals``), and
the reads of existing records an import is matched and planned against."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from hub.database import Database

Records = list[asyncpg.Record]


class ImportStore:
    """Batches as stored, within one tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def batches(self, tenant_id: str, kind: str, limit: int, offset: int) -> Records:
        """The tenant's batches of one kind, newest first."""
        rows: Records = await self._db.pool.fetch(
            "SELECT * FROM hub_import_batches WHERE tenant_id = $1 AND kind = $2 ORDER BY "
            "created_at DESC, batch_id DESC LIMIT $3 OFFSET $4", tenant_id, kind, limit, offset)
        return rows

    async def batch(self, tenant_id: str, batch_id: str, kind: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._db.pool.fetchrow(
            "SELECT * FROM hub_import_batches WHERE tenant_id = $1 AND batch_id = $2 AND "
            "kind = $3", tenant_id, batch_id, kind)
        return row

    async def proposals(self, tenant_id: str, batch_id: str) -> Records:
        """A CRM batch's proposals in line order."""
        rows: Records = await self._db.pool.fetch(
            "SELECT * FROM hub_import_proposals WHERE tenant_id = $1 AND batch_id = $2 "
            "ORDER BY row_no", tenant_id, batch_id)
        return rows

    async def add_crm_batch(self, tenant_id: str, batch_id: str, filename: str, status: str,
                            created_by: str, row_count: int, errors: Any, summary: Any,
                            proposals: Sequence[dict[str, Any]]) -> None:
        """A CRM batch and its proposals, in one transaction."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO hub_import_batches (tenant_id, batch_id, kind, filename, status, "
                "created_by, row_count, errors, summary) VALUES ($1, $2, 'crm', $3, $4, $5, $6,"
                " $7, $8)", tenant_id, batch_id, filename, status, created_by, row_count,
                errors, summary)
            await conn.executemany(
                "INSERT INTO hub_import_proposals (tenant_id, batch_id, row_no, action, "
                "person_id, candidates, fields, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [(tenant_id, batch_id, p["row_no"], p["action"], p["person_id"],
                  p["candidates"], p["fields"], p["changes"]) for p in proposals])

    async def add_inventory_batch(self, tenant_id: str, batch_id: str, filename: str,
                                  status: str, created_by: str, row_count: int, errors: Any,
                                  summary: Any, committed_by: str | None,
                                  committed_at: datetime | None) -> asyncpg.Record:
        """An inventory batch as stored."""
        row: asyncpg.Record = await self._db.pool.fetchrow(
            "INSERT INTO hub_import_batches (tenant_id, batch_id, kind, filename, status, "
            "created_by, row_count, errors, summary, committed_by, committed_at) VALUES ($1, $2, "
            "'inventory', $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *", tenant_id, batch_id,
            filename, status, created_by, row_count, errors, summary, committed_by,
            committed_at)
        return row

    async def people_matching(self, tenant_id: str, phones: Sequence[str],
                              emails: Sequence[str]) -> Records:
        """Live people whose phone ends in one of ``phones`` (last ten digits) or whose email
        is one of ``emails`` (lower case)."""
        rows: Records = await self._db.pool.fetch(
            "SELECT id, full_name, primary_phone, email, city, country, nationality, segment, "
            "source, tags FROM crm_people WHERE tenant_id = $1 AND NOT deleted AND ("
            "right(regexp_replace(coalesce(primary_phone, ''), '\\D', '', 'g'), 10) = "
            "ANY($2::text[]) OR lower(email) = ANY($3::text[]))",
            tenant_id, list(phones), list(emails))
        return rows

    async def person(self, tenant_id: str, person_id: str | None) -> dict[str, Any] | None:
        """A person's projection row (deleted or not)."""
        row = await self._db.pool.fetchrow(
            "SELECT * FROM crm_people WHERE tenant_id = $1 AND id = $2", tenant_id, person_id)
        return dict(row) if row else None

    async def decide_all(self, tenant_id: str, batch_id: str, decision: str, user_id: str
                         ) -> None:
        """Decide every pending proposal that is not a conflict."""
        await self._db.pool.execute(
            "UPDATE hub_import_proposals SET decision = $3, reviewed_by = $4, reviewed_at = "
            "now() WHERE tenant_id = $1 AND batch_id = $2 AND decision = 'pending' AND "
            "action <> 'conflict'", tenant_id, batch_id, decision, user_id)

    async def decide(self, tenant_id: str, batch_id: str, row_no: int, decision: str,
                     person_id: str | None, changes: Any, user_id: str) -> None:
        """Decide one proposal (and the person it merges into, with the changes)."""
        await self._db.pool.execute(
            "UPDATE hub_import_proposals SET decision = $4, person_id = $5, changes = $6, "
            "reviewed_by = $7, reviewed_at = now() WHERE tenant_id = $1 AND batch_id = $2 AND "
            "row_no = $3", tenant_id, batch_id, row_no, decision, person_id, changes, user_id)

    async def committed(self, tenant_id: str, batch_id: str, user_id: str,
                        record_ids: Sequence[tuple[int, str]]) -> None:
        """Mark a batch committed, and each proposal (``row_no``) with the record it wrote."""
        await self._db.pool.execute(
            "UPDATE hub_import_batches SET status = 'committed', committed_by = $3, "
            "committed_at = now() WHERE tenant_id = $1 AND batch_id = $2", tenant_id,
            batch_id, user_id)
        await self._db.pool.executemany(
            "UPDATE hub_import_proposals SET committed_id = $4 WHERE tenant_id = $1 AND "
            "batch_id = $2 AND row_no = $3",
            [(tenant_id, batch_id, row_no, record_id) for row_no, record_id in record_ids])

    async def inventory_names(self, tenant_id: str) -> tuple[Records, Records, Records]:
        """The tenant's live projects (``id, name``), towers (``id, project_id, name``) and
        units (``project_id, tower_id, unit_no``)."""
        pool = self._db.pool
        projects: Records = await pool.fetch(
            "SELECT id, name FROM inventory_projects WHERE tenant_id = $1 AND NOT deleted",
            tenant_id)
        towers: Records = await pool.fetch(
            "SELECT id, project_id, name FROM inventory_towers WHERE tenant_id = $1 AND NOT "
            "deleted", tenant_id)
        units: Records = await pool.fetch(
            "SELECT project_id, tower_id, unit_no FROM inventory_units WHERE tenant_id = $1 AND "
            "NOT deleted", tenant_id)
        return projects, towers, units
