"""Reads of the update log beside `hub.store.HubStore`'s: the live feed's window of newest
rows."""

from __future__ import annotations

import asyncpg

from hub.database import Database
from hub.storage.checkpoints import TAIL_SQL


class LogReads:
    """The log as the live feed reads it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def window(self, tenant_id: str, after: int, upto: int, base: int, limit: int
                     ) -> list[asyncpg.Record]:
        """Log rows ``after < seq <= upto`` (at most ``limit``, oldest first) with their
        document's scope columns; the document's ``state`` (and its checkpoint's ``tail``) only
        when its scope changed after ``base``."""
        rows: list[asyncpg.Record] = await self._db.pool.fetch(
            "SELECT u.seq, u.guid, u.data, u.device_id, d.collection, d.owner_id, "
            "d.team_id, d.prev_owner_id, d.prev_team_id, d.readers, d.prev_readers, "
            "d.scope_seq, "
            "CASE WHEN d.scope_seq > $4 THEN d.state END AS state, "
            f"CASE WHEN d.scope_seq > $4 THEN {TAIL_SQL} END AS tail "
            "FROM hub_updates u JOIN hub_documents d "
            "ON d.tenant_id = u.tenant_id AND d.guid = u.guid "
            "WHERE u.tenant_id = $1 AND u.seq > $2 AND u.seq <= $3 ORDER BY u.seq LIMIT $5",
            tenant_id, after, upto, base, limit)
        return rows
