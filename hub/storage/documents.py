"""Whole-tenant reads of the stored documents (the sync store reads them by guid)."""

from __future__ import annotations

from hub.database import Database
from hub.storage.checkpoints import STATE_SQL, state_of


class DocumentReads:
    """Which documents a tenant holds, and their states."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def guids(self, tenant_id: str) -> set[str]:
        """Every document guid the tenant holds."""
        rows = await self._db.pool.fetch(
            "SELECT guid FROM hub_documents WHERE tenant_id = $1", tenant_id)
        return {r["guid"] for r in rows}

    async def states(self, tenant_id: str) -> dict[str, bytes]:
        """Every document of the tenant: its state, by guid."""
        rows = await self._db.pool.fetch(
            f"SELECT {STATE_SQL} FROM hub_documents d "
            "WHERE d.tenant_id = $1", tenant_id)
        return {r["guid"]: state_of(r) for r in rows}
