"""Health and the admin surface: hub status, installed devices, pending counts."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from hub.api.deps import HubDep, ManagerDep

router = APIRouter(tags=["admin"])


@router.get("/health")
async def health(hub: HubDep) -> dict[str, str]:
    await hub.db.pool.fetchval("SELECT 1")
    return {"status": "ok"}


class AdminHealth(BaseModel):
    status: str
    database: str
    live_connections: int
    last_seq: int
    horizon: int
    sandbox: dict[str, object]


@router.get("/api/admin-surface/health")
async def admin_health(principal: ManagerDep, hub: HubDep) -> AdminHealth:
    last, horizon = await hub.store.high_water(principal.tenant_id)
    version = await hub.db.pool.fetchval("SHOW server_version")
    return AdminHealth(
        status="ok", database=f"PostgreSQL {version}", live_connections=hub.connections.count(),
        last_seq=last, horizon=horizon, sandbox=hub.sandbox.stats_dict(),
    )


class Install(BaseModel):
    device_id: str
    name: str
    kind: str
    user_id: str
    user_name: str
    status: str
    paired_at: datetime
    last_seen: datetime | None
    cursor: int
    pending: int
    offences: int
    blocked_reason: str | None


@router.get("/api/admin-surface/installs")
async def installs(principal: ManagerDep, hub: HubDep) -> list[Install]:
    rows = await hub.accounts.devices(principal.tenant_id)
    return [Install(**{k: r[k] for k in Install.model_fields}) for r in rows]
