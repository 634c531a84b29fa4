"""``GET /api/events``: the caller's live change events as Server-Sent Events.

Each event names one record the caller may read that changed (``event: change``, data
``{"collection", "id", "seq", "removed"}``, ``id:`` the sequence), so a page refreshes the
fragment that shows it. A browser's EventSource reconnects by itself after the stream ends or
breaks and sends ``Last-Event-ID``: the stream resumes from there. Other events: ``ready`` (the
stream is live, from ``seq``), ``reset`` (too much changed: reload the page), ``closed`` (the
account changed or the token ended: sign in again; ``hub_error``: reconnect). Every
`KEEPALIVE_S` the caller's credentials are checked again (a logout ends the stream within that
time; a role change or a disabled account ends it at once), and an idle stream gets a comment
line that keeps proxies from closing it.

`change_stream` is the response itself, for a route authenticated another way (the WebOS's
session cookie).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.errors import AuthError
from core.identity import Principal
from hub.api.deps import HubDep, current_principal
from hub.live_events import ChangeStream, Closed, Reset
from hub.service import Hub

router = APIRouter(prefix="/api", tags=["events"])
log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
RETRY_MS = 2000
"""How long a browser waits before reconnecting (the ``retry:`` field)."""
DEFAULT_LIFETIME_S = 900
"""A stream ends after this long and the browser reconnects from its last event: a proxy's
timeout never cuts one mid-event, and a hub restart or rebalancing spreads streams out."""

Recheck = Callable[[], Awaitable[object]]
"""Raises `AuthError` once the caller's credentials no longer hold."""


def _frame(event: str, data: dict[str, object], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(hub: Hub, principal: Principal, recheck: Recheck, cursor: int | None,
                  lifetime_s: float) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    async with ChangeStream(hub, principal, cursor) as stream:
        yield _frame("ready", {"seq": stream.cursor}, stream.cursor)
        end = time.monotonic() + lifetime_s
        checked_at = time.monotonic()
        while (left := end - time.monotonic()) > 0:
            try:
                got = await stream.next(min(KEEPALIVE_S, left))
                if time.monotonic() - checked_at >= KEEPALIVE_S:  # busy or idle alike
                    await recheck()
                    checked_at = time.monotonic()
            except Closed as closed:
                yield _frame("closed", {"reason": closed.change})
                return
            except AuthError as exc:
                yield _frame("closed", {"reason": exc.code})
                return
            except Exception as exc:  # the database went away: the browser reconnects
                log.warning("change stream of %s ended: %s", principal.user_id, exc)
                yield _frame("closed", {"reason": "hub_error"})
                return
            if isinstance(got, Reset):
                yield _frame("reset", {"seq": got.seq}, got.seq)
            elif got:
                for change in got:
                    yield _frame("change", change.as_json(), change.seq)
            else:
                yield b": keepalive\n\n"


def change_stream(hub: Hub, principal: Principal, recheck: Recheck, *,
                  last_event_id: str | None = None,
                  lifetime_s: float = DEFAULT_LIFETIME_S) -> StreamingResponse:
    """The SSE response for ``principal`` from ``last_event_id`` (a sequence; absent or not a
    number: from now)."""
    cursor = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    return StreamingResponse(
        _events(hub, principal, recheck, cursor, lifetime_s), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(hub: HubDep, credentials: Credentials,
                 last_event_id: Annotated[str | None, Header(max_length=20)] = None,
                 since: Annotated[int | None, Query(ge=0, description=(
                     "Resume after this sequence (else Last-Event-ID, else from now)."))] = None,
                 max_s: Annotated[int, Query(ge=0, le=3600, description=(
                     "End the stream after this many seconds (the browser reconnects)."
                 ))] = DEFAULT_LIFETIME_S) -> StreamingResponse:
    """The caller's live change events (bearer token), one per changed record in scope."""
    principal = await current_principal(hub, credentials)

    async def recheck() -> Principal:
        return await current_principal(hub, credentials)

    resume = str(since) if since is not None else last_event_id
    return change_stream(hub, principal, recheck, last_event_id=resume, lifetime_s=max_s)
