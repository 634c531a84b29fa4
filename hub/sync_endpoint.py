"""The device sync endpoint: one websocket session per connected edge agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import asyncpg
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.auth import verify_challenge
from core.errors import (
    AuthError,
    FrameTooLarge,
    PermissionDenied,
    ProtocolError,
    Throttled,
    VelocityError,
)
from core.identity import Principal
from hub import sentinel
from hub.accounts import Device
from hub.gate import Admitted, AlreadyHeld, Deferred, DocumentDamaged, Refused
from hub.pull_merge import Outgoing, resume_before
from hub.store import Change, Committed, LogItem, RefusalReceipt
from sync import protocol as p

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT_S = 10.0
FIRST_PAGE = 200
"""Snapshots in a bootstrap's first page; later pages are `pull_batch` long."""
SEEN_INTERVAL_S = 1.0
"""How often a session that has nothing for its device tells it its cursor moved on."""


class SyncSession:
    """Authenticates a device, streams what it may read, takes its pushes exactly once."""

    def __init__(self, ws: WebSocket, hub: Hub) -> None:
        self.ws = ws
        self.hub = hub
        self.tenant_id = ""
        self.device_id = ""
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._revoked = False
        self._offences = 0
        self._pushes: asyncio.Queue[tuple[float, p.PushBatch]] = asyncio.Queue(
            hub.settings.push_window)
        """Push batches waiting to be judged, with when each arrived."""
        """Push batches read and waiting to be judged (a full queue stops the reading)."""
        self.principal: Principal | None = None
        self._bound: frozenset[int] = frozenset()
        """The CRDT client ids bound to this device (bound only in its own handshake)."""
        self._cursor = 0
        self._owed_final = False
        """The last pull batch sent said ``more``: the next one is sent even if empty."""
        self._known_last: int | None = None
        """The tenant's committed high-water mark as the fan-out notices tell it (None: ask)."""
        self._rescope = False
        """The user's role or team changed after the device's cursor: resync its scope."""

    def wake(self, last: int | None = None) -> None:
        if last is None:
            self._known_last = None  # ask the database
        elif self._known_last is not None:
            self._known_last = max(self._known_last, last)
        self._wake.set()

    async def close_revoked(self) -> None:
        self._revoked = True
        await self._close(p.CloseCode.FORBIDDEN, "revoked", "this device was revoked")

    @property
    def user_id(self) -> str:
        return self.principal.user_id if self.principal is not None else ""

    async def close_for_account(self, change: str) -> None:
        """The user's role, team or status changed: close now; a reconnect is judged (and its
        scope computed) afresh, and a disabled user's is refused."""
        if change == "disabled":
            await self._close(p.CloseCode.AUTH, "user_inactive", "this account was disabled")
        else:
            await self._close(p.CloseCode.AUTH, "scope_changed",
                              "this account's role or team changed; reconnect")

    async def _send(self, message: p.Message) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(p.encode(message))

    async def _close(self, code: int, reason: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self._send(p.Error(code, reason, message))
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=reason)

    async def _receive(self) -> p.Message:
        raw = await self.ws.receive()
        if raw["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(raw.get("code", 1000))
        data = raw.get("bytes")
        if data is None:
            raise ProtocolError("text frames are not part of the protocol; send binary")
        return p.decode(data, self.hub.limits)

    async def run(self) -> None:
        await self.ws.accept()
        try:
            device, hello = await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT_S)
        except TimeoutError:
            await self._close(p.CloseCode.AUTH, "timeout", "handshake took too long")
            self._ended("handshake_timeout")
            return
        except VelocityError as exc:
            await self._close(p.close_code_for(exc), exc.code, exc.message)
            self._ended(exc.code)
            return
        except WebSocketDisconnect:
            self._ended("disconnected")
            return
        except Exception as exc:  # the database or the network failed, or a bug
            _log_failure(exc, "handshake", self.device_id)
            await self._close(p.CloseCode.INTERNAL, "internal", "hub error; retry later")
            self._ended("internal")
            return
        self.hub.connections.add(self)
        self._cursor = hello.cursor
        log.info("sync session opened", extra={"tenant": self.tenant_id,
                                                "device": self.device_id,
                                                "cursor": hello.cursor})
        reason = "internal"
        try:
            reason = await self._serve(device, hello.cursor)
        finally:
            self.hub.connections.discard(self)
            self._ended(reason)
            with contextlib.suppress(Exception):  # where the device got to, for the admins
                await self.hub.accounts.seen(device, self._cursor)

    @property
    def cursor(self) -> int:
        return self._cursor

    def _ended(self, reason: str) -> None:
        """One log line and one count per session, whatever ended it."""
        self.hub.metrics.sessions_closed.labels(reason).inc()
        log.info("sync session closed", extra={"tenant": self.tenant_id or None,
                                                "device": self.device_id or None,
                                                "reason": reason})

    async def _handshake(self) -> tuple[Device, p.Hello]:
        hello = await self._receive()
        if not isinstance(hello, p.Hello):
            raise ProtocolError("the first frame must be HELLO")
        device = await self.hub.accounts.device(hello.device_id)
        if device.status != "active":
            raise PermissionDenied(
                f"device is {device.status}"
                + (f": {device.blocked_reason}" if device.blocked_reason else "")
                + "; ask an admin to pair it again", code=device.status,
            )
        nonce = os.urandom(p.NONCE_BYTES)
        await self._send(p.Challenge(nonce))
        auth = await self._receive()
        if not isinstance(auth, p.Auth):
            raise ProtocolError("expected AUTH after CHALLENGE")
        verify_challenge(device.public_key, nonce, device.device_id, auth.signature)
        user = await self.hub.accounts.caller(device.tenant_id, device.user_id)
        await self.hub.accounts.bind_client_ids(device, hello.client_ids)
        self._bound = frozenset(await self.hub.accounts.bound_client_ids(device.tenant_id,
                                                                         device.device_id))
        self.tenant_id, self.device_id = device.tenant_id, device.device_id
        self._offences = device.offences
        self.principal = Principal(user.tenant_id, user.user_id, user.role, user.team_id,
                                   device.device_id)
        self._rescope = 0 < hello.cursor <= user.scope_seq
        last, horizon = await self.hub.store.high_water(device.tenant_id)
        incoming = (await self.hub.store.count_in_scope(self.principal)
                    if hello.cursor == 0 or hello.cursor < horizon or hello.cursor > last
                    or self._rescope else 0)
        await self._send(p.Welcome(user.tenant_id, user.user_id, user.role.value, horizon,
                                   incoming))
        return device, hello

    async def _serve(self, device: Device, cursor: int) -> str:
        """Run the session's loops until one ends; returns why it ended."""
        tasks = [
            asyncio.create_task(self._send_loop(device, cursor)),
            asyncio.create_task(self._receive_loop(device)),
            asyncio.create_task(self._push_loop(device)),
        ]
        reason = "disconnected"
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except WebSocketDisconnect:
            pass
        except VelocityError as exc:
            reason = exc.code
            if _blames_device(exc):
                with contextlib.suppress(Exception):  # closing matters more than counting
                    await self._charge(device, exc.code)
            await self._close(p.close_code_for(exc), exc.code, exc.message)
        except Exception as exc:
            reason = "internal"
            _log_failure(exc, "session", self.device_id)
            await self._close(p.CloseCode.INTERNAL, "internal", "hub error; retry later")
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        return reason

    # --- hub → device -------------------------------------------------------------------------

    async def _send_loop(self, device: Device, cursor: int) -> None:
        assert self.principal is not None
        store, batch = self.hub.store, self.hub.settings.pull_batch
        last, horizon = await store.high_water(self.tenant_id)
        if cursor > last:  # the database was restored from a backup older than this device
            cursor = 0
        if cursor == 0 or cursor < horizon or self._rescope:
            removals = await (  # rescope: everything the old role or team could read
                store.read_out_of_scope(self.principal) if self._rescope
                else store.read_removals(self.principal, cursor))
            if removals:  # before the snapshots: a later change of scope comes as an update
                await self._send_items(_as_is(removals), cursor, more=True, resume=cursor)
            after = ""
            page = min(batch, FIRST_PAGE)  # a small first page: the device starts at once
            while True:
                items = await store.read_snapshots(self.principal, after, page)
                done = len(items) < page
                page = batch
                await self._send_items(_as_is(items), last if done else cursor,
                                       more=not done, resume=cursor)
                if done:
                    break
                after = items[-1].guid
            cursor = last
        else:  # back after reassignments it missed: drop what left its scope since its cursor
            removals = await store.read_removals(self.principal, cursor)
            if removals:
                await self._send_items(_as_is(removals), cursor, more=True, resume=cursor)
        told = False  # a device already up to date still hears so once (it is caught up)
        told_at = 0.0
        recorded = False
        lag = _LagWatch(self)
        self._known_last = None  # the first round asks; notices keep it current after that
        while True:
            self._wake.clear()
            if self._known_last is None:
                self._known_last, _ = await store.high_water(self.tenant_id)
            last = self._known_last
            if last > cursor or not told:
                merger = self.hub.merger
                items, new_cursor = await self.hub.feed.read(self.principal, cursor, batch,
                                                             last=last,
                                                             with_own=merger is not None)
                more = new_cursor < last
                lag.read(last - cursor, more)
                # Commits this device may not read move its cursor at most once a second: an
                # empty batch per commit of the tenant was a frame, and on the device a
                # durable write, for every device online.
                outgoing = merger.merge(items, self.device_id) if merger else _as_is(items)
                if (outgoing or more or not told or self._owed_final
                        or time.monotonic() - told_at >= SEEN_INTERVAL_S):
                    await self._send_items(outgoing, new_cursor, more=more)
                    told, told_at, self._owed_final = True, time.monotonic(), more
                cursor = self._cursor = new_cursor
                if not recorded:  # at once for the admin list, then within a second
                    recorded = True
                    await self.hub.accounts.seen(device, cursor)
                else:
                    self.hub.cursor_log.note(self.tenant_id, self.device_id, cursor)
                if new_cursor < last:
                    continue
            await self._wake.wait()

    async def _send_items(self, items: list[Outgoing], cursor: int, *, more: bool,
                          resume: int | None = None) -> None:
        """Send a page of items as one or more pull batches, each within the frame limit the
        device enforces; every batch but the last says ``more`` and carries the cursor a device
        may resume from after it: ``resume`` (a bootstrap page), else just below the earliest
        sequence an item still to come stands for (a merged item stands for several)."""
        chunks = list(_chunks(items, self.hub.limits.max_frame_bytes // 2,
                              self.hub.limits.max_batch_items))
        sent = 0
        for n, chunk in enumerate(chunks, 1):
            final = n == len(chunks)
            sent += len(chunk)
            partial = resume if resume is not None else resume_before(items[sent:], cursor)
            await self._send(p.PullBatch(tuple(_wire(o.item) for o in chunk),
                                         cursor if final else partial,
                                         more=more if final else True))

    # --- device → hub -------------------------------------------------------------------------

    async def _receive_loop(self, device: Device) -> None:
        """Read frames as they come (the socket's pings are answered meanwhile) and queue the
        push batches; a full queue stops the reading until one is judged."""
        while True:
            message = await self._receive()
            if not isinstance(message, p.PushBatch):
                raise ProtocolError(f"unexpected {type(message).__name__} after WELCOME")
            await self._throttle(device)
            await self._pushes.put((time.monotonic(), message))

    async def _push_loop(self, device: Device) -> None:
        """Judge and commit the device's push batches one after another, in order (a batch
        builds on the clocks of the one before). Batches that queued while the previous one
        was judged are judged together, as one (one pass through the gate, one commit): a
        device never waits behind its own backlog one batch at a time."""
        carried: tuple[float, p.PushBatch] | None = None
        while True:
            arrived, batch = carried or await self._pushes.get()
            carried = None
            items = list(batch.items)
            ids = {i.update_id for i in items}
            while not self._pushes.empty() and len(items) < self.hub.limits.max_batch_items:
                queued = self._pushes.get_nowait()
                if not ids.isdisjoint(i.update_id for i in queued[1].items):
                    carried = queued  # an id pushed again: its batch gets its own answer
                    break
                items += queued[1].items
                ids.update(i.update_id for i in queued[1].items)
            await self._handle_push(device, arrived, p.PushBatch(tuple(items)))

    async def _handle_push(self, device: Device, arrived: float, batch: p.PushBatch) -> None:
        assert self.principal is not None
        store = self.hub.store
        acks: list[tuple[str, int]] = []
        refusals: list[p.Refusal] = []
        changes: list[Change] = []
        fresh: dict[str, p.PushItem] = {}
        held = await store.receipts(self.tenant_id, self.device_id,
                                    [i.update_id for i in batch.items])
        for item in batch.items:
            receipt = held.get(item.update_id)
            if isinstance(receipt, RefusalReceipt):  # refused before: refused for good
                refusals.append(_refusal(item.update_id, receipt))
            elif receipt is not None:
                acks.append((item.update_id, receipt))
            else:
                fresh.setdefault(item.update_id, item)
        verdicts = await self.hub.gate.admit_batch(
            self.principal, self._bound, [(i.guid, i.data, i.update_id) for i in fresh.values()])
        refused: dict[str, RefusalReceipt] = {}
        hostile: list[str] = []
        unsafe: set[str] = set()
        deferred: list[tuple[p.PushItem, Deferred]] = []
        for item, verdict in zip(fresh.values(), verdicts, strict=True):
            if isinstance(verdict, Admitted):
                changes.append(verdict.change)
            elif isinstance(verdict, AlreadyHeld):
                acks.append((item.update_id, 0))
            elif isinstance(verdict, Refused):
                refused[item.update_id] = RefusalReceipt(
                    item.guid, verdict.error.code[: p.MAX_ID_CHARS],
                    verdict.error.message[: p.MAX_MESSAGE_CHARS])
                if verdict.hostile:
                    log.warning("refused unsafe update", extra={
                        "tenant": self.tenant_id, "device": self.device_id,
                        "update": item.update_id, "reason": verdict.error.code,
                        "detail": verdict.error.message})
                    hostile.append(verdict.error.code)
                    unsafe.add(item.update_id)
            else:
                deferred.append((item, verdict))
        # Admitted changes go to the committer before anything else is awaited: it reports
        # every outcome to the gate, which holds them already (`Gate.settle`).
        results = await self.hub.committer.commit(
            self.tenant_id, changes, user_id=self.principal.user_id,
            device_id=self.device_id, principal=self.principal) if changes else []
        recorded = await store.record_refusals(self.tenant_id, self.device_id,
                                               list(refused.items()))
        for update_id, receipt in recorded.items():  # another session's answer may be first
            if isinstance(receipt, RefusalReceipt):
                refusals.append(_refusal(update_id, receipt))
            else:
                acks.append((update_id, receipt))
        if changes:
            for change, result in zip(changes, results, strict=True):
                if isinstance(result, Committed):
                    acks.append((change.update_id or "", result.seq))
                else:  # recorded for good with the commit
                    refusals.append(p.Refusal(change.update_id or "", change.guid,
                                              result.code[: p.MAX_ID_CHARS],
                                              result.message[: p.MAX_MESSAGE_CHARS]))
            consents = [c.guid.partition("/")[2] for c, r in zip(changes, results, strict=True)
                        if isinstance(r, Committed) and c.guid.startswith("consents/")]
            if consents:  # a revocation made on a device purges results made anywhere
                await sentinel.purge_after_sync(self.hub, self.principal, consents)
            scores = [c.guid.partition("/")[2] for c, r in zip(changes, results, strict=True)
                      if isinstance(r, Committed) and c.guid.startswith("qd_scores/")]
            if scores:  # a score reaches its lead's person and the lead's last QD
                await sentinel.follow_scores(self.hub, self.tenant_id, scores)
        # counted before the device hears of it, so that its next push knows
        blocked = bool(hostile) and await self._charge(device, hostile[-1], len(hostile))
        for refusal in refusals:
            if refusal.update_id not in unsafe:  # an unsafe one was logged as a warning
                log.info("update refused", extra={
                    "tenant": self.tenant_id, "device": self.device_id,
                    "update": refusal.update_id, "reason": refusal.reason})
            await self._send(refusal)
        if deferred:
            await self._defer(deferred)
        if acks:
            await self._send(p.Ack(tuple(acks)))
        self.hub.metrics.pushed(self.tenant_id, arrived, len(acks),
                                [r.reason for r in refusals],
                                [verdict.error.code for _, verdict in deferred])
        if blocked:
            raise AuthError("device blocked after repeated unsafe updates", code="blocked")

    async def _defer(self, deferred: list[tuple[p.PushItem, Deferred]]) -> None:
        """Refuse for now, with a retryable reason (`sync.protocol.RETRYABLE_REASONS`), what
        the hub could not judge: not recorded, nobody blamed; the device pushes it again."""
        for item, verdict in deferred:
            error = verdict.error
            if isinstance(error, DocumentDamaged):
                log.error("device %s pushed to a damaged document: %s", self.device_id,
                          error.message)
            assert error.code in p.RETRYABLE_REASONS, error.code
            await self._send(p.Refusal(item.update_id, item.guid, error.code,
                                       error.message[: p.MAX_MESSAGE_CHARS]))

    async def _throttle(self, device: Device) -> None:
        """A device with refused unsafe updates may push at most once per interval, counted
        per device (reconnecting does not reset it)."""
        settings = self.hub.settings
        if (self._offences >= settings.throttle_after
                and not await self.hub.accounts.throttled_push(device,
                                                               settings.throttle_interval_s)):
            raise Throttled(f"device throttled after {self._offences} refused unsafe updates; "
                            f"push at most every {settings.throttle_interval_s:.0f}s")

    async def _charge(self, device: Device, code: str, count: int = 1) -> bool:
        """Count offences against the device (``code``: the last one's); True once that
        blocked it."""
        self._offences += count
        return await self.hub.accounts.offence(device, code, self.hub.settings.max_offences,
                                               count)


class _LagWatch:
    """Fan-out lag in the log: one line when a live session falls more than a page
    (`VELOCITY_PULL_BATCH`) behind the commits, one when it has caught up again; the catch-up
    after a reconnect, before it first caught up, is not lag."""

    def __init__(self, session: SyncSession) -> None:
        self._session = session
        self._live = False
        self._since: float | None = None

    def read(self, behind: int, more: bool) -> None:
        """After a read of the feed: ``behind`` commits were past the cursor, ``more`` left."""
        where = {"tenant": self._session.tenant_id, "device": self._session.device_id}
        if more and self._live and self._since is None:
            self._since = time.monotonic()
            log.info("sync session behind", extra={**where, "behind": behind})
        elif not more:
            if self._since is not None:
                log.info("sync session caught up", extra={
                    **where, "seconds": round(time.monotonic() - self._since, 3)})
            self._since, self._live = None, True


def _refusal(update_id: str, receipt: RefusalReceipt) -> p.Refusal:
    return p.Refusal(update_id, receipt.guid, receipt.reason, receipt.message)


def _blames_device(error: VelocityError) -> bool:
    """Whether a session-ending error is one no honest client causes: a malformed frame or an
    unexpected message (not a throttle, and not a frame over a size limit it may not know)."""
    return isinstance(error, ProtocolError) and not isinstance(error, Throttled | FrameTooLarge)


_OUTAGES = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.InsufficientResourcesError)
"""Failures of the database or the network, not of the code: one log line, no traceback."""


def _log_failure(exc: Exception, stage: str, device_id: str) -> None:
    if isinstance(exc, _OUTAGES):
        log.warning("sync %s of device %s ended: %s: %s", stage, device_id or "?",
                    type(exc).__name__, exc)
    else:
        log.exception("sync %s of device %s failed", stage, device_id or "?")


def _chunks(items: list[Outgoing], max_bytes: int, max_items: int) -> Iterator[list[Outgoing]]:
    """Consecutive runs of ``items`` of at most ``max_items`` and about ``max_bytes`` each
    (an item larger than the budget goes alone); always at least one run, maybe empty."""
    run: list[Outgoing] = []
    size = 0
    for item in items:
        cost = len(item.item.data) + len(item.item.guid) + 16
        if run and (size + cost > max_bytes or len(run) >= max_items):
            yield run
            run, size = [], 0
        run.append(item)
        size += cost
    yield run


def _as_is(items: list[LogItem]) -> list[Outgoing]:
    """Items sent one for one (each stands for its own sequence only)."""
    return [Outgoing(i, i.seq) for i in items]


def _wire(item: LogItem) -> p.PullItem:
    kind = (p.ItemKind.REMOVE if item.removed else
            p.ItemKind.SNAPSHOT if item.snapshot else p.ItemKind.UPDATE)
    return p.PullItem(item.seq, item.guid, kind, item.data)
