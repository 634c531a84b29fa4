"""Import batches as stored (`hub.storage.imports`): listing and reading them in the caller's
tenant."""

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
    rows = await hub.storage.imports.batches(principal.tenant_id, kind, limit, offset)
    return [batch_view(dict(r)) for r in rows]


async def batch(hub: Hub, principal: Principal, batch_id: str, kind: str = "crm"
                ) -> dict[str, Any]:
    """A batch with its errors and (CRM) its proposals."""
    row = await hub.storage.imports.batch(principal.tenant_id, batch_id, kind)
    if row is None:
        raise NotFound(f"no {kind} import batch {batch_id}")
    out = batch_view(dict(row))
    if kind == "crm":
        out["proposals"] = [batch_view(dict(p)) for p in
                            await hub.storage.imports.proposals(principal.tenant_id, batch_id)]
        for p in out["proposals"]:
            p.pop("batch_id", None)
    return out
