"""The mobile-edge routes on the device's local API, served from the replica: they answer
offline, and every change is a local CRDT write that syncs when the hub is reachable (the hub
then judges it with the same policy as its own REST routes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter

from core.errors import Conflict, NotFound
from edge_agent.service import EdgeAgent
from mobile_edge.inputs import HeartbeatIn
from mobile_edge.routes import mobile_edge_router
from mobile_edge.store import Cond, NewRecord, Row, as_record, as_text, render_where
from schema import collection

ACTIVE_WITHIN = timedelta(seconds=120)


class EdgeMobileStore:
    """The device user's mobile-edge reads and writes on this device (the replica holds only
    what the user may read, so reads need no scope filter)."""

    def __init__(self, agent: EdgeAgent) -> None:
        self.agent = agent
        self.tenant_id, self.user_id = agent.pairing.tenant_id, agent.pairing.user_id
        self.surfaces: dict[str, Row] = {}
        """Surface sessions on this device (presence, kept in memory, never synced)."""

    async def get(self, coll: str, record_id: str) -> Row:
        record = self.agent.replica.record(coll, record_id)
        if record.deleted:
            raise NotFound(f"no {coll} record {record_id} on this device")
        return record.model_dump(mode="json")

    async def select(self, coll: str, where: Sequence[Cond], order: str, *, limit: int = 200,
                     offset: int = 0) -> list[Row]:
        condition, order_by, params = render_where(coll, where, order, lambda _: "?", 0)
        rows = await self.agent.replica.query(
            f"SELECT * FROM temp.{collection(coll).table} t WHERE NOT t.deleted AND {condition} "
            f"ORDER BY {order_by} LIMIT ? OFFSET ?", [*map(as_text, params), limit, offset])
        return [as_record(coll, r) for r in rows]

    async def create(self, records: Sequence[NewRecord]) -> list[Row]:
        written = await self.agent.replica.write_many(list(records))
        if self.agent.sync is not None:
            self.agent.sync.poke()
        return [r.model_dump(mode="json") for r in written]

    async def change(self, coll: str, record_id: str, values: Row) -> Row:
        return (await self.agent.write(coll, record_id, values)).model_dump(mode="json")

    async def heartbeat(self, beat: HeartbeatIn) -> Row:
        now = datetime.now(UTC)
        held = self.surfaces.get(beat.surface_id)
        if held is not None and held["user_id"] != self.user_id:
            raise Conflict(f"surface {beat.surface_id} belongs to another user")
        session = {"started_at": now.isoformat(), "beats": 0, **(held or {}),
                   **beat.model_dump(mode="json"), "user_id": self.user_id,
                   "last_seen": now.isoformat()}
        session["beats"] += 1
        self.surfaces[beat.surface_id] = session
        active = sum(1 for s in self.surfaces.values() if s["state"] != "closed"
                     and now - datetime.fromisoformat(s["last_seen"]) < ACTIVE_WITHIN)
        return {**{k: v for k, v in session.items() if k != "user_id"},
                "active_surfaces": active}


def mobile_edge_local_router(agent: EdgeAgent) -> APIRouter:
    """The routes over this device's replica (the caller adds the local-token check)."""
    store = EdgeMobileStore(agent)

    async def device_store() -> EdgeMobileStore:
        return store

    return mobile_edge_router(device_store)
