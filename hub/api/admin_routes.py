"""Health and the admin surface: hub status, installed devices, pending counts."""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from core.errors import AuthError, PermissionDenied
from core.identity import Role
from hub.api.deps import HubDep, ManagerDep

router = APIRouter(tags=["admin"])


@router.get("/health")
async def health(hub: HubDep) -> dict[str, str]:
    await hub.storage.server.ping()
    return {"status": "ok"}


LOOPBACK = frozenset({"127.0.0.1", "::1"})


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, hub: HubDep) -> Response:
    """Prometheus text format: with ``VELOCITY_METRICS_TOKEN`` set, for its bearer; else for
    scrapers on this machine only (the figures name tenants)."""
    token = hub.settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise AuthError("send the metrics token as a bearer token", code="bad_token")
    elif request.client is None or request.client.host not in LOOPBACK:
        raise PermissionDenied("metrics are served to this machine only unless "
                        "VELOCITY_METRICS_TOKEN is set", code="forbidden")
    return Response(hub.metrics.render(), media_type=CONTENT_TYPE_LATEST)


class AdminHealth(BaseModel):
    status: str
    database: str | None
    """The server's version, for admins only."""
    live_connections: int
    """Live sync sessions of the caller's tenant on this hub process."""
    last_seq: int
    horizon: int
    sandbox: dict[str, object]


@router.get("/api/admin-surface/health")
async def admin_health(principal: ManagerDep, hub: HubDep) -> AdminHealth:
    """The hub as the caller's tenant sees it; software versions are for admins only."""
    last, horizon = await hub.store.high_water(principal.tenant_id)
    version = await hub.storage.server.version() if principal.role is Role.ADMIN else None
    return AdminHealth(
        status="ok", database=f"PostgreSQL {version}" if version else None,
        live_connections=hub.connections.count(principal.tenant_id),
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
