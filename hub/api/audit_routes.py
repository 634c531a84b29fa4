"""``GET /api/admin-surface/audit``: the tenant's audit log, filtered and paged (SALES_DIRECTOR
and ADMIN, each for their own tenant: an ADMIN administers one tenant, like every account)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hub.api.deps import HubDep, ManagerDep
from hub.storage import audit

router = APIRouter(prefix="/api/admin-surface", tags=["admin"])
Text = Annotated[str | None, Query(max_length=200)]


class AuditEntry(BaseModel):
    audit_id: int
    at: datetime
    user_id: str | None
    device_id: str | None
    action: str
    target: str | None
    guid: str | None
    seq: int | None
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before: int | None
    """Pass as ``before`` for the next (older) page; None: this was the last."""


@router.get("/audit")
async def audit_log(principal: ManagerDep, hub: HubDep, user_id: Text = None,
                    action: Text = None, target: Text = None, device_id: Text = None,
                    since: datetime | None = None, until: datetime | None = None,
                    before: Annotated[int | None, Query(ge=1)] = None,
                    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50) -> AuditPage:
    """Entries newest first. ``action``: exact, or every action of a noun when it ends in
    ``.`` (``user.``); ``target``: a user, a device, or a record's ``collection/id``."""
    rows = await hub.storage.audit.entries(principal.tenant_id, audit.AuditFilter(
        user_id, action, target, device_id, since, until, before, limit))
    return AuditPage(entries=[AuditEntry(**r) for r in rows],
                     next_before=rows[-1]["audit_id"] if len(rows) == limit else None)
