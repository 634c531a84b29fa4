"""``GET /api/devices``: the tenant's paired devices as the WebOS lists them (SALES_DIRECTOR and
ADMIN; pairing codes, the pairing QR and revocation are in `hub.api.auth_routes` and
`hub.api.pairing_qr`).

``pending`` is what the hub can know of a device's backlog: the records in the device's read
scope that changed after the last position the device has taken (its live session's cursor on
this hub, else the cursor stored at its last report). What a device has written and not pushed
yet is not known to the hub until it is pushed; the protocol carries no outbox size.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from core.identity import Principal, Role
from hub.api.deps import HubDep, ManagerDep
from hub.presence import ONLINE_WITHIN_S
from hub.scope import scope_sql
from hub.service import Hub

router = APIRouter(prefix="/api", tags=["devices"])
PENDING_CAP = 1000
"""Pending counts stop here (shown as "1000+"): a device that far behind is resyncing anyway,
and counting a never-synced device's whole scope cost a full scan per device."""


class DeviceOut(BaseModel):
    device_id: str
    name: str
    kind: str
    user_id: str
    user_name: str
    user_active: bool
    status: str
    blocked_reason: str | None
    paired_at: datetime
    last_seen: datetime | None
    online: bool
    """A live sync session on this hub process now, or seen by any hub within
    `hub.presence.ONLINE_WITHIN_S`."""
    cursor: int
    pending: int
    """Records in the device's scope changed after its cursor (still to reach it), at most
    `PENDING_CAP`."""
    refused_updates: int
    """Updates of the device the hub refused for good (the device dropped them)."""


@router.get("/devices")
async def devices(principal: ManagerDep, hub: HubDep) -> list[DeviceOut]:
    """Every device of the caller's tenant, oldest pairing first."""
    rows = await hub.db.pool.fetch(
        "SELECT d.*, u.full_name AS user_name, u.active AS user_active, u.role AS user_role, "
        "u.team_id AS user_team, d.last_seen > now() - make_interval(secs => $2) AS recent, "
        "(SELECT count(*) FROM hub_refusals r WHERE r.tenant_id = "
        "d.tenant_id AND r.device_id = d.device_id) AS refused "
        "FROM hub_devices d JOIN hub_users u USING (tenant_id, user_id) "
        "WHERE d.tenant_id = $1 ORDER BY d.paired_at, d.device_id", principal.tenant_id,
        ONLINE_WITHIN_S)
    live = {s.device_id: s.cursor for s in hub.connections.sessions(principal.tenant_id)}
    out, counted = [], {}  # devices of one user at one cursor share their count
    for r in rows:
        cursor = max(live.get(r["device_id"], 0), r["cursor"])
        owner = Principal(r["tenant_id"], r["user_id"], Role(r["user_role"]), r["user_team"])
        if (owner, cursor) not in counted:
            counted[owner, cursor] = await _pending(hub, owner, cursor)
        out.append(DeviceOut(
            device_id=r["device_id"], name=r["name"], kind=r["kind"], user_id=r["user_id"],
            user_name=r["user_name"], user_active=r["user_active"], status=r["status"],
            blocked_reason=r["blocked_reason"], paired_at=r["paired_at"],
            last_seen=r["last_seen"],
            online=r["device_id"] in live or (r["status"] == "active" and bool(r["recent"])),
            cursor=cursor,
            pending=counted[owner, cursor], refused_updates=r["refused"]))
    return out


async def _pending(hub: Hub, owner: Principal, cursor: int) -> int:
    """Documents the owner's devices may read that changed after ``cursor``, counted up to
    `PENDING_CAP` (on the ``hub_documents (tenant_id, updated_seq)`` index)."""
    scope, params = scope_sql(owner, "d", 4)
    count: int = await hub.db.pool.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM hub_documents d WHERE d.tenant_id = $1 AND "
        f"d.updated_seq > $2 AND {scope} LIMIT $3) AS p", owner.tenant_id, cursor, PENDING_CAP,
        *params)
    return count
