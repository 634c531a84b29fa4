"""``GET /webos/events``: the signed-in user's live change events (`hub.api.events`'s stream,
authenticated by the session cookie), which the WebOS script turns into in-place refreshes of a
page's live regions. The cookie is checked again on every keepalive: a logout ends the stream."""

from __future__ import annotations

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from core.identity import Principal
from hub.api.events import DEFAULT_LIFETIME_S, change_stream
from hub.service import Hub
from hub.webos.render import PageRoute
from hub.webos.session import COOKIE_NAME, PagePrincipal, principal_from_cookie

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/webos/events")
async def events(request: Request, principal: PagePrincipal,
                 last_event_id: str | None = Header(None, max_length=20),
                 max_s: int = Query(DEFAULT_LIFETIME_S, ge=0, le=3600)) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    cookie = request.cookies.get(COOKIE_NAME)

    async def recheck() -> Principal:
        return await principal_from_cookie(hub, cookie)

    return change_stream(hub, principal, recheck, last_event_id=last_event_id,
                         lifetime_s=max_s)
