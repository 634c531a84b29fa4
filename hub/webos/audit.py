"""The tenant's audit log (``hub_audit``: every commit and refusal, whoever made it), newest
first, filtered by user and action, paged by ``audit_id``."""

from __future__ import annotations

import json
from typing import Any

from core.identity import Principal
from hub.service import Hub

PAGE = 50
KINDS = ("create", "update", "refused", "delete")


async def entries(hub: Hub, principal: Principal, user_id: str | None, action: str | None,
                  before: int | None) -> list[dict[str, Any]]:
    rows = await hub.db.pool.fetch(
        "SELECT a.audit_id, a.at, a.user_id, u.full_name, a.device_id, a.action, a.guid, a.seq,"
        " a.detail FROM hub_audit a LEFT JOIN hub_users u ON u.tenant_id = a.tenant_id AND "
        "u.user_id = a.user_id WHERE a.tenant_id = $1 AND ($2::text IS NULL OR a.user_id = $2)"
        " AND ($3::text IS NULL OR a.action = $3) AND ($4::bigint IS NULL OR a.audit_id < $4)"
        " ORDER BY a.audit_id DESC LIMIT $5", principal.tenant_id, user_id, action, before,
        PAGE)
    out = []
    for r in rows:
        row = dict(r)
        detail = row["detail"]
        row["detail"] = json.loads(detail) if isinstance(detail, str) else (detail or {})
        out.append(row)
    return out
