"""What the WebOS script polls to know when to refresh a page's live regions: the newest
committed sequence of the caller's tenant (every change, from any edge or the hub, bumps it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.service import Hub
from hub.webos.render import PageRoute
from hub.webos.session import PagePrincipal

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/webos/live")
async def live(request: Request, principal: PagePrincipal) -> JSONResponse:
    hub: Hub = request.app.state.hub
    seq = await hub.db.pool.fetchval("SELECT last_seq FROM hub_tenants WHERE tenant_id = $1",
                                     principal.tenant_id)
    return JSONResponse({"seq": int(seq or 0)}, headers={"Cache-Control": "no-store"})
