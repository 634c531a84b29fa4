"""The mobile-edge routes on the hub: reads from the PostgreSQL projection within the caller's
tenant and scope, writes through the committer (`LocalWriter`), judged by `hub.policy`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import Conflict, NotFound
from core.identity import Principal
from hub.api.deps import HubDep, PrincipalDep
from hub.service import Hub
from mobile_edge.inputs import HeartbeatIn
from mobile_edge.routes import mobile_edge_router
from mobile_edge.store import Cond, NewRecord, Row, as_record

ACTIVE_WITHIN_S = 120
"""A surface whose last heartbeat is this recent counts as active."""


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
        rows = await self.hub.storage.projection.select(self.principal, coll, where, order,
                                                        limit=limit, offset=offset)
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
        row, active = await self.hub.storage.surfaces.beat(
            self.tenant_id, self.user_id, beat.surface_id, beat.surface, beat.state,
            beat.app_version, ACTIVE_WITHIN_S)
        if row is None:
            raise Conflict(f"surface {beat.surface_id} belongs to another user; start a "
                           "new surface session with a fresh surface_id")
        return {**_json(dict(row)), "active_surfaces": active}


def _json(row: dict[str, Any]) -> Row:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


async def hub_store(principal: PrincipalDep, hub: HubDep) -> HubMobileStore:
    return HubMobileStore(hub, principal)


router = mobile_edge_router(hub_store)
