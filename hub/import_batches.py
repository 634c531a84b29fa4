"""Import batches as stored (`hub_import_batches`, `hub_import_proposals`): listing and
reading them in the caller's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import NotFound
from core.identity import Principal
from hub.service import Hub


def batch_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()
            if k != "tenant_id"}


async def batches(hub: Hub, principal: Principal, kind: str, limit: int, offset: int
                  ) -> list[dict[str, Any]]:
    rows = await hub.db.pool.fetch(
        "SELECT * FROM hub_import_batches WHERE tenant_id = $1 AND kind = $2 ORDER BY "
        "created_at DESC, batch_id DESC LIMIT $3 OFFSET $4", principal.tenant_id, kind, limit,
        offset)
    return [batch_view(dict(r)) for r in rows]


async def batch(hub: Hub, principal: Principal, batch_id: str, kind: str = "crm"
                ) -> dict[str, Any]:
    """A batch with its errors and (CRM) its proposals."""
    row = await hub.db.pool.fetchrow(
        "SELECT * FROM hub_import_batches WHERE tenant_id = $1 AND batch_id = $2 AND kind = $3",
        principal.tenant_id, batch_id, kind)
    if row is None:
        raise NotFound(f"no {kind} import batch {batch_id}")
    out = batch_view(dict(row))
    if kind == "crm":
        out["proposals"] = [batch_view(dict(p)) for p in await hub.db.pool.fetch(
            "SELECT * FROM hub_import_proposals WHERE tenant_id = $1 AND batch_id = $2 "
            "ORDER BY row_no", principal.tenant_id, batch_id)]
        for p in out["proposals"]:
            p.pop("batch_id", None)
    return out
