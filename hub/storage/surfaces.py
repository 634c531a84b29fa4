"""Mobile-edge surface sessions (``hub_surface_sessions``): heartbeats and active counts."""

from __future__ import annotations

import asyncpg

from hub.database import Database

_BEAT_SQL = """
INSERT INTO hub_surface_sessions AS s (tenant_id, surface_id, user_id, surface, state, app_version)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, surface_id) DO UPDATE SET
    state = EXCLUDED.state, surface = EXCLUDED.surface, app_version = EXCLUDED.app_version,
    last_seen = now(), beats = s.beats + 1
WHERE s.user_id = EXCLUDED.user_id
RETURNING surface_id, surface, state, app_version, started_at, last_seen, beats
"""


class SurfaceStore:
    """One row per surface session, kept by its heartbeats."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def beat(self, tenant_id: str, user_id: str, surface_id: str, surface: str,
                   state: str, app_version: str | None, active_within_s: int
                   ) -> tuple[asyncpg.Record | None, int]:
        """Record a heartbeat; the session's row (None: the surface id is another user's) and
        how many of the user's surfaces are open and beat within ``active_within_s``."""
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(_BEAT_SQL, tenant_id, surface_id, user_id, surface, state,
                                      app_version)
            if row is None:
                return None, 0
            active: int = await conn.fetchval(
                f"SELECT count(*) FROM hub_surface_sessions WHERE tenant_id = $1 AND "
                f"user_id = $2 AND state <> 'closed' AND "
                f"last_seen > now() - interval '{int(active_within_s)} s'", tenant_id, user_id)
        return row, active
