"""The mobile-edge routes on the hub: reads from the PostgreSQL projection within the caller's
tenant and scope, writes through the committer (`LocalWriter`), judged by `hub.policy`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import Conflict, NotFound
from core.identity import Principal
from hub.api.crm import read_rows
from hub.api.deps import HubDep, PrincipalDep
from hub.service import Hub
from mobile_edge.inputs import HeartbeatIn
from mobile_edge.routes import mobile_edge_router
from mobile_edge.store import Cond, NewRecord, Row, as_record, render_where

ACTIVE_WITHIN_S = 120
"""A surface whose last heartbeat is this recent counts as active."""

_BEAT_SQL = """
INSERT INTO hub_surface_sessions AS s (tenant_id, surface_id, user_id, surface, state, app_version)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, surface_id) DO UPDATE SET
    state = EXCLUDED.state, surface = EXCLUDED.surface, app_version = EXCLUDED.app_version,
    last_seen = now(), beats = s.beats + 1
WHERE s.user_id = EXCLUDED.user_id
RETURNING surface_id, surface, state, app_version, started_at, last_seen, beats
"""
_ACTIVE_SQL = (f"SELECT count(*) FROM hub_surface_sessions WHERE tenant_id = $1 AND user_id = $2 "
               f"AND state <> 'closed' AND last_seen > now() - interval '{ACTIVE_WITHIN_S} s'")


class HubMobileStore:
    """One principal's mobile-edge reads and writes on the hub."""

    def __init__(self, hub: Hub, principal: Principal) -> None:
        self.hub, self.principal = hub, principal
        self.tenant_id, self.user_id = principal.tenant_id, principal.user_id

    async def get(self, coll: str, record_id: str) -> Row:
        rows = await self.select(coll, [("id", "=", record_id)], "id", limit=1)
        if not rows:
            raise NotFound(f"no {coll} record {record_id}")
        return rows[0]

    async def select(self, coll: str, where: Sequence[Cond], order: str, *, limit: int = 200,
                     offset: int = 0) -> list[Row]:
        condition, order_by, params = render_where(coll, where, order, lambda n: f"${n}", 4)
        rows = await read_rows(self.hub, self.principal, coll, condition, tuple(params),
                               order_by, limit, offset)
        return [as_record(coll, r) for r in rows]

    async def create(self, records: Sequence[NewRecord]) -> list[Row]:
        committed = await self.hub.writer.write_many(self.principal, records, create=True)
        return [c.record.model_dump(mode="json") for c in committed if c.record is not None]

    async def change(self, coll: str, record_id: str, values: Row) -> Row:
        committed = await self.hub.writer.write(self.principal, coll, record_id, values,
                                                create=False)
        assert committed.record is not None
        return committed.record.model_dump(mode="json")

    async def heartbeat(self, beat: HeartbeatIn) -> Row:
        async with self.hub.db.pool.acquire() as conn:
            row = await conn.fetchrow(_BEAT_SQL, self.tenant_id, beat.surface_id, self.user_id,
                                      beat.surface, beat.state, beat.app_version)
            if row is None:
                raise Conflict(f"surface {beat.surface_id} belongs to another user; start a "
                               "new surface session with a fresh surface_id")
            active = await conn.fetchval(_ACTIVE_SQL, self.tenant_id, self.user_id)
        return {**_json(dict(row)), "active_surfaces": active}


def _json(row: dict[str, Any]) -> Row:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


async def hub_store(principal: PrincipalDep, hub: HubDep) -> HubMobileStore:
    return HubMobileStore(hub, principal)


router = mobile_edge_router(hub_store)
