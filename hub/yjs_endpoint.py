"""Canvas pages for stock Yjs clients: the y-websocket protocol at
``/api/oracle/v1/ws/oracle/canvas/{page_id}``.

A browser or Node.js `WebsocketProvider` connects with ``?token=<user token>``. The same sharing
rules as REST apply (no access: refused before any byte of the page; view only: updates refused).
Every incoming update passes the same gate as a device push (strict decode, client ids bound to
this user's Yjs clients, isolated apply, record validation, policy) and enters the log through
the group committer, so edges receive it; what others commit reaches the client from the log
after commit. Awareness (presence) reaches the page's clients on this hub at once and those on
the deployment's other hubs through `hub.awareness_relay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from core.auth import read_token
from core.errors import AuthError, NotFound, PermissionDenied, ProtocolError, VelocityError
from core.identity import Principal
from core.ids import make_guid
from hub.awareness_relay import Notice, PresenceRelay
from hub.canvas import Canvases
from hub.gate import Admitted, Refused
from hub.policy import CANVAS, Access, canvas_access
from hub.store import Committed
from schema import collection
from sync import yws
from sync.protocol import close_code_for
from sync.record import RecordDoc, merge_updates
from sync.yupdate import decode_state_vector, decode_update

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger(__name__)
YJS_PATH = "/api/oracle/v1/ws/oracle/canvas/{page_id}"
EMPTY_UPDATE = b"\x00\x00"
FEED_PAGE = 1000
OUTDATED_S = 30.0
"""y-protocols' awareness timeout: a state not renewed for this long is gone."""


class YjsRooms:
    """The Yjs clients of each page on this hub process and the latest awareness states of
    the page's clients on every hub (others' through the `PresenceRelay`)."""

    def __init__(self, relay: PresenceRelay | None = None) -> None:
        self._members: dict[str, set[YjsSession]] = defaultdict(set)
        self._states: dict[str, dict[int, tuple[yws.AwarenessEntry, float]]] = defaultdict(dict)
        self._relay = relay
        self._sending: set[asyncio.Task[None]] = set()
        if relay is not None:
            relay.listen(self._on_notice)

    async def join(self, room: str, session: YjsSession) -> None:
        first = room not in self._members
        self._members[room].add(session)
        if first and self._relay is not None:  # others' clients already there: announce
            await self._relay.ask(room)

    def leave(self, room: str, session: YjsSession) -> None:
        self._members[room].discard(session)
        if not self._members[room]:
            self._members.pop(room, None)
            self._states.pop(room, None)

    def states(self, room: str) -> list[yws.AwarenessEntry]:
        """The room's present clients; a state not renewed within y-protocols' 30 s timeout
        is gone (its hub may have died)."""
        fresh = time.monotonic() - OUTDATED_S
        return [e for e, at in self._states.get(room, {}).values()
                if e.state != "null" and at >= fresh]

    def _keep(self, room: str, entries: tuple[yws.AwarenessEntry, ...]
              ) -> tuple[yws.AwarenessEntry, ...]:
        """Keep the entries that are news and return them: a client not held, a newer clock,
        or the same clock with another state (y-protocols' removal). A y-websocket client
        sends back every state it receives; that echo is not news."""
        states, now = self._states[room], time.monotonic()
        news = []
        for e in entries:
            held = states.get(e.client_id)
            if held is None or held[0].clock < e.clock or (
                    held[0].clock == e.clock and held[0].state != e.state):
                states[e.client_id] = (e, now)
                news.append(e)
        return tuple(news)

    async def publish(self, room: str, sender: YjsSession,
                      entries: tuple[yws.AwarenessEntry, ...]) -> tuple[yws.AwarenessEntry, ...]:
        """Keep the newest state of each client and pass what is news to the page's others,
        on this hub and the others; returns the news."""
        news = self._keep(room, entries)
        if news:
            await self._deliver(room, news, sender)
            if self._relay is not None:
                await self._relay.publish(room, news)
        return news

    async def _deliver(self, room: str, entries: tuple[yws.AwarenessEntry, ...],
                       sender: YjsSession | None) -> None:
        frame = yws.encode_awareness(entries)
        for peer in list(self._members.get(room, ())):
            if peer is not sender:
                with contextlib.suppress(Exception):  # a closing peer: its session ends
                    await peer.send(frame)

    def _on_notice(self, notice: Notice) -> None:
        if notice.room not in self._members or self._relay is None:
            return
        if notice.ask:
            mine = [e for s in self._members[notice.room] for e in s.announced_entries()]
            work = self._relay.publish(notice.room, mine) if mine else None
        else:
            news = self._keep(notice.room, notice.entries)
            work = self._deliver(notice.room, news, None) if news else None
        if work is not None:
            task = asyncio.get_running_loop().create_task(work)
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)


class YjsSession:
    """One stock Yjs client editing one canvas page."""

    def __init__(self, ws: WebSocket, hub: Hub, rooms: YjsRooms, page_id: str) -> None:
        self.ws, self.hub, self.rooms, self.page_id = ws, hub, rooms, page_id
        self.guid = make_guid(CANVAS, page_id)
        self.tenant_id = ""
        self.device_id = ""
        """``yjs:<user id>``: the pseudo-device the user's Yjs client ids are bound to."""
        self.cursor = 0
        """The last committed sequence this client was brought up to (for metrics)."""
        self._room = ""
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._known_last: int | None = None
        self._bound: set[int] = set()
        """Yjs client ids bound to this user's pseudo-device (bindings never change)."""
        self._mine: set[int] = set()
        """Sequences this client's own updates got (not sent back to it)."""
        self._announced: dict[int, int] = {}
        """Awareness client id → clock this connection announced (cleared when it leaves)."""

    # --- the live-session interface (fan-out, revocation) -----------------------------------

    def wake(self, last: int | None = None) -> None:
        if last is None:
            self._known_last = None
        elif self._known_last is not None:
            self._known_last = max(self._known_last, last)
        self._wake.set()

    async def close_revoked(self) -> None:
        await self._close(PermissionDenied("access revoked", code="revoked"))

    @property
    def user_id(self) -> str:
        return self.device_id.removeprefix("yjs:")

    async def close_for_account(self, change: str) -> None:
        """The user's role, team or status changed: close; a reconnect is judged afresh."""
        code = "user_inactive" if change == "disabled" else "scope_changed"
        await self._close(AuthError("this account changed; reconnect", code=code))

    async def send(self, frame: bytes) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(frame)

    async def _close(self, error: VelocityError) -> None:
        """Tell the client why (y-protocols' permission-denied message) and close."""
        with contextlib.suppress(Exception):
            await self.send(yws.encode_permission_denied(f"{error.code}: {error.message}"))
        with contextlib.suppress(Exception):
            await self.ws.close(code=close_code_for(error), reason=error.code[:120])

    # --- the session --------------------------------------------------------------------------

    async def run(self) -> None:
        await self.ws.accept()
        try:
            principal, access = await self._authenticate()
        except VelocityError as exc:
            await self._close(exc)
            return
        self.tenant_id, self.device_id = principal.tenant_id, principal.device_id or ""
        self._room = f"{self.tenant_id}/{self.guid}"
        self.hub.connections.add(self)
        await self.rooms.join(self._room, self)
        tasks = [asyncio.create_task(self._send_loop(principal)),
                 asyncio.create_task(self._receive_loop(principal, access))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except WebSocketDisconnect:
            pass
        except VelocityError as exc:
            log.info("Yjs client of %s on %s closed: %s", self.device_id, self.guid, exc.code)
            await self._close(exc)
        except Exception:
            log.exception("Yjs session on %s failed", self.guid)
            await self._close(VelocityError("hub error; retry later", code="internal"))
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.hub.connections.discard(self)
            await self._leave()

    async def _authenticate(self) -> tuple[Principal, Access]:
        token = self.ws.query_params.get("token", "")
        if not token:
            raise AuthError("missing ?token=; POST /api/auth/login first", code="no_token")
        claimed = read_token(token, self.hub.secret_key)
        user = await self.hub.accounts.caller(claimed.principal.tenant_id,
                                              claimed.principal.user_id)
        if user.token_version != claimed.version:
            raise AuthError("token revoked; log in again", code="token_revoked")
        principal = dataclasses.replace(user.principal, device_id=f"yjs:{user.user_id}")
        try:
            page = await Canvases(self.hub).page(principal, self.page_id)
        except NotFound:
            raise PermissionDenied("this canvas page does not exist or is not shared with you",
                                   code="not_shared") from None
        return principal, canvas_access(principal, page)

    def announced_entries(self) -> list[yws.AwarenessEntry]:
        """The latest entries of this connection's clients, as the room keeps them."""
        return [e for e in self.rooms.states(self._room) if e.client_id in self._announced]

    async def _leave(self) -> None:
        """Tell the page's others that this connection's clients left."""
        if self._announced:
            gone = tuple(yws.AwarenessEntry(c, clock + 1, "null")
                         for c, clock in self._announced.items())
            with contextlib.suppress(Exception):
                await self.rooms.publish(self._room, self, gone)
        self.rooms.leave(self._room, self)

    # --- hub → client -------------------------------------------------------------------------

    async def _send_loop(self, principal: Principal) -> None:
        """The page's committed updates after the connection's start, read through the
        tenant's shared log feed (one query per commit for every session of the hub)."""
        store = self.hub.store
        reader = dataclasses.replace(principal, device_id=None)  # the user's other clients too
        cursor, _ = await store.high_water(self.tenant_id)  # first: the state covers it
        self.cursor = cursor
        state = await self._state()
        await self.send(yws.encode_sync(yws.SyncStep.STEP1, _state_vector(state)))
        for entry_frame in self._awareness_frames():
            await self.send(entry_frame)
        while True:
            self._wake.clear()
            if self._known_last is None:
                self._known_last, _ = await store.high_water(self.tenant_id)
            last = self._known_last
            while last > cursor:
                items, cursor = await self.hub.feed.read(reader, cursor, FEED_PAGE, last=last)
                self.cursor = cursor
                updates: list[bytes] = []
                for item in items:
                    if item.guid != self.guid or item.seq in self._mine:
                        continue
                    if item.removed:
                        raise PermissionDenied("this canvas page is no longer shared with you",
                                               code="not_shared")
                    updates.append(item.data)
                for update in _merged(updates, self.hub.limits.max_update_bytes // 2):
                    await self.send(yws.encode_sync(yws.SyncStep.UPDATE, update))
            self._mine = {s for s in self._mine if s > cursor}
            await self._wake.wait()

    def _awareness_frames(self) -> list[bytes]:
        states = self.rooms.states(self._room)
        return [yws.encode_awareness(states)] if states else []

    async def _state(self) -> bytes:
        doc = await self.hub.store.document(self.tenant_id, self.guid)
        return doc.state if doc is not None else b""

    # --- client → hub -------------------------------------------------------------------------

    async def _receive_loop(self, principal: Principal, access: Access) -> None:
        limits = self.hub.limits
        while True:
            raw = await self.ws.receive()
            if raw["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(raw.get("code", 1000))
            data = raw.get("bytes")
            if data is None:
                raise ProtocolError("y-websocket frames are binary")
            message = yws.decode(data, limits.max_update_bytes)
            if isinstance(message, yws.Sync):
                if message.step is yws.SyncStep.STEP1:
                    await self._answer_step1(message.data)
                elif message.data != EMPTY_UPDATE:
                    await self._commit(principal, access, message.data)
            elif isinstance(message, yws.Awareness):
                # only news: a client also echoes the others' states it received
                for e in await self.rooms.publish(self._room, self, message.entries):
                    self._announced[e.client_id] = e.clock
            else:
                for frame in self._awareness_frames():
                    await self.send(frame)

    async def _answer_step1(self, state_vector: bytes) -> None:
        decode_state_vector(state_vector, self.hub.limits)  # strict, before pycrdt sees it
        state = await self._state()
        doc = RecordDoc(collection(CANVAS), self.page_id, state=state or None)
        await self.send(yws.encode_sync(yws.SyncStep.STEP2, doc.diff(state_vector)))

    async def _commit(self, principal: Principal, access: Access, update: bytes) -> None:
        """One update from the client: judged like a device push, committed, or the client
        is told why and disconnected (the page keeps what it had)."""
        if access < Access.EDIT:
            raise PermissionDenied("you may only view this canvas page; ask its owner for edit "
                                   "access", code="view_only")
        decoded = decode_update(update, self.hub.limits, resolve=False)
        unknown = set(decoded.clients) - self._bound
        if unknown:  # a binding is for good: ask once per client id and session
            self._bound |= await Canvases(self.hub).bind_yjs_clients(
                self.tenant_id, self.device_id, sorted(unknown))
        bound = self._bound & set(decoded.clients)
        (verdict,) = await self.hub.gate.admit_batch(principal, bound,
                                                     [(self.guid, update, None)])
        if isinstance(verdict, Refused):
            raise verdict.error
        if not isinstance(verdict, Admitted):
            return  # the hub held every clock already
        (result,) = await self.hub.committer.commit(
            self.tenant_id, [verdict.change], user_id=principal.user_id,
            device_id=self.device_id, principal=principal)
        if not isinstance(result, Committed):
            raise result
        self._mine.add(result.seq)


def _merged(updates: list[bytes], max_bytes: int) -> list[bytes]:
    """The committed updates a read found for a client, as one merged update (Yjs
    ``mergeUpdates``: a client that fell behind gets one frame, not one per edit), or one by
    one when merging fails or gives more than ``max_bytes``."""
    if len(updates) < 2:
        return updates
    try:
        merged = merge_updates(updates)
    except VelocityError:
        return updates
    return [merged] if len(merged) <= max_bytes else updates


def _state_vector(state: bytes) -> bytes:
    if not state:
        return b"\x00"
    return RecordDoc(collection(CANVAS), "sv", state=state).state_vector()

