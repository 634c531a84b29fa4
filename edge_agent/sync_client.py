"""The edge's sync client: keeps a websocket session with the hub, pulls from its cursor,
pushes the outbox through a bounded window, and reconnects with backoff (see `reconnect`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

import websockets

from core.auth import DeviceKey
from core.errors import AuthError, ProtocolError, StorageError
from edge_agent.device import Pairing
from edge_agent.metrics import EdgeMetrics
from edge_agent.push_window import PushWindow
from edge_agent.reconnect import Backoff, wait_to_reconnect
from edge_agent.replica import RefusalKind, Replica
from sync import protocol as p

log = logging.getLogger(__name__)
PERMANENT_CLOSE = p.FINAL_CLOSE_CODES
PERMANENT_AUTH = {"revoked", "blocked", "unknown_device", "client_id_taken"}
IDLE_CHECK_S = 1.0
"""How often an idle pusher looks at its window for overdue answers."""
RETRY_PAUSE_S = (0.5, 15.0)
"""First and longest pause before pushing again after the hub refused for its own trouble."""
NETWORK_CHECK_S = 3.0
"""After a network change, how long an open session has to answer a ping before it is taken
for dead (the connection may be bound to an address the device no longer has)."""


class SyncClient:
    """An `async with` service owning the session task; local writes call `poke()`."""

    def __init__(
        self, replica: Replica, pairing: Pairing, key: DeviceKey, *, batch: int = 200,
        backoff_base_s: float = 0.5, backoff_cap_s: float = 60.0, max_window: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replica = replica
        self.pairing = pairing
        self.key = key
        self.batch = batch
        self.max_window = max_window
        self.clock = clock
        """Time for the push window's answer latencies (a simulation passes its own)."""
        self.backoff = Backoff(backoff_base_s, backoff_cap_s)
        self._outbox_event = asyncio.Event()
        self._wake = asyncio.Event()
        self._network_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._welcomed_at: float | None = None
        self._retry_pause = 0.0
        self._retry_at = 0.0
        self.window: PushWindow | None = None
        self.online = False
        self.caught_up = asyncio.Event()
        self.incoming = 0
        """Snapshots the hub announced for the current bootstrap (0 when resuming)."""
        self.last_sync: datetime | None = None
        self.last_error: str | None = None
        self.stopped_reason: str | None = None
        self.sessions = 0
        self.retried = 0
        self.metrics = EdgeMetrics()
        """Updates the hub refused for its own trouble (or after an earlier one) and pushed
        again."""

    async def __aenter__(self) -> SyncClient:
        self._task = asyncio.create_task(self._run(), name="velocity-edge-sync")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def poke(self) -> None:
        """A local write happened: push soon."""
        self._outbox_event.set()

    def wake(self) -> None:
        """The hub announced it is back, or the network changed: reconnect now if waiting."""
        self._wake.set()

    def network_changed(self) -> None:
        """The way to the hub changed (`edge_agent.netwatch`): reconnect now if waiting; an
        open session must answer a ping within `NETWORK_CHECK_S` or it is dropped and
        replaced at once."""
        self._wake.set()
        self._network_changed.set()

    async def _run(self) -> None:
        while True:
            self._welcomed_at = None
            unreachable = False
            try:
                await self._session()
                self.last_error = "the hub closed the session"
                ended = "closed"
            except asyncio.CancelledError:
                raise
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                ended = f"close_{code}" if code else "dropped"
                self.last_error = f"connection closed ({code or 'no close frame'})"
                if code in PERMANENT_CLOSE:
                    self.stopped_reason = exc.rcvd.reason if exc.rcvd else "refused"
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                ended = "unreachable"
                self.last_error = f"hub unreachable: {type(exc).__name__}: {exc}"
                unreachable = self._welcomed_at is None
            except AuthError as exc:
                ended = exc.code
                self.last_error = f"{exc.code}: {exc.message}"
                if exc.code in PERMANENT_AUTH:
                    self.stopped_reason = exc.message
            except (ProtocolError, StorageError) as exc:
                ended = exc.code
                self.last_error = f"{exc.code}: {exc.message}"
            except Exception as exc:  # a bug: keep the device syncing, and say why
                log.exception("sync session failed; retrying")
                ended = "bug"
                self.last_error = f"{type(exc).__name__}: {exc}"
            self.online = False
            self.caught_up.clear()
            self.metrics.disconnects.labels(ended).inc()
            if self.stopped_reason:
                log.warning("sync stopped: %s", self.stopped_reason)
                return
            welcomed = self._welcomed_at
            self.backoff.session_ended(time.monotonic() - welcomed if welcomed else None)
            delay = self.backoff.next_delay()
            log.info("sync: %s; reconnecting within %.1fs", self.last_error, delay)
            await wait_to_reconnect(delay, self.pairing.hub_url, self._wake,
                                    unreachable=unreachable)

    async def _session(self) -> None:
        async with websockets.connect(self.pairing.sync_url, max_size=None,
                                      open_timeout=10) as ws:
            await ws.send(p.encode(p.Hello(self.pairing.device_id, await self.replica.cursor(),
                                           (self.pairing.client_id,))))
            challenge = p.decode(await ws.recv())  # type: ignore[arg-type]
            if isinstance(challenge, p.Error):
                raise AuthError(challenge.message, code=challenge.reason)
            if not isinstance(challenge, p.Challenge):
                raise ProtocolError("expected CHALLENGE")
            await ws.send(p.encode(p.Auth(self.key.sign_challenge(challenge.nonce,
                                                                  self.pairing.device_id))))
            welcome = p.decode(await ws.recv())  # type: ignore[arg-type]
            if isinstance(welcome, p.Error):
                raise AuthError(welcome.message, code=welcome.reason)
            if not isinstance(welcome, p.Welcome):
                raise ProtocolError("expected WELCOME")
            self.incoming = welcome.incoming
            self.online = True
            self.metrics.sessions.inc()
            self.sessions += 1
            self._welcomed_at = time.monotonic()
            self.last_error = None
            window = self.window = PushWindow(max_batches=self.max_window)
            answered = asyncio.Event()
            self._network_changed.clear()
            tasks = [asyncio.create_task(self._read_loop(ws, window, answered)),
                     asyncio.create_task(self._push_loop(ws, window, answered)),
                     asyncio.create_task(self._check_after_network_change(ws))]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # the first failure ends the session
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _check_after_network_change(self, ws: websockets.ClientConnection) -> None:
        """Ends the session (TimeoutError) when it does not answer a ping after a change."""
        while True:
            await self._network_changed.wait()
            self._network_changed.clear()
            pong = await ws.ping()
            try:
                await asyncio.wait_for(pong, NETWORK_CHECK_S)
            except TimeoutError:
                ws.transport.abort()  # a closing handshake on a dead link would wait too
                raise TimeoutError("no answer after a network change") from None
            self._wake.clear()  # the session survived: a later cut waits its backoff

    async def _read_loop(self, ws: websockets.ClientConnection, window: PushWindow,
                         answered: asyncio.Event) -> None:
        # Messages are handled strictly in order, but the next frame is read and decoded
        # while the previous one is being applied (its SQLite work runs in a thread):
        # at most one message waits, so memory stays bounded by two frames.
        handling: asyncio.Task[None] | None = None
        try:
            async for frame in ws:
                message = p.decode(frame)  # type: ignore[arg-type]
                previous = handling
                handling = asyncio.create_task(
                    self._handle_after(previous, message, window, answered))
                if previous is not None:
                    await previous
            if handling is not None:
                await handling
        finally:
            if handling is not None:
                handling.cancel()  # no-op when done; its error, if any, was raised above
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await handling

    async def _handle_after(self, previous: asyncio.Task[None] | None, message: p.Message,
                            window: PushWindow, answered: asyncio.Event) -> None:
        if previous is not None:
            await previous  # in order; a failed predecessor fails this one too
        await self.handle(message, window, answered)

    async def handle(self, message: p.Message, window: PushWindow, answered: asyncio.Event
                     ) -> None:
        """Apply one message from the hub: a pull batch, an ACK or a REFUSAL."""
        if isinstance(message, p.PullBatch):
            self.metrics.pulled.inc(len(message.items))
            await self.replica.apply_pulled(
                ((i.guid, i.data, i.kind is p.ItemKind.SNAPSHOT) for i in message.items
                 if i.kind is not p.ItemKind.REMOVE),
                message.cursor,
                removed=[i.guid for i in message.items if i.kind is p.ItemKind.REMOVE])
            self.last_sync = datetime.now(UTC)
            if not message.more:
                self.caught_up.set()
        elif isinstance(message, p.Ack):
            ids = [uid for uid, _ in message.entries]
            await self.replica.acknowledge(ids)
            self.metrics.acked.inc(len(ids))
            now = self.clock()
            for uid in ids:
                window.answered(uid, now)
            self._retry_pause = 0.0
            self.last_sync = datetime.now(UTC)
            answered.set()
        elif isinstance(message, p.Refusal):
            outcome = await self.replica.refuse(message.update_id, message.guid, message.reason,
                                                message.message)
            window.answered(message.update_id, self.clock())
            if outcome.kind is RefusalKind.RETRY:
                self.retried += 1
                self.metrics.retried.labels(message.reason).inc()
                window.rewind(outcome.position)
                if message.reason in p.RETRYABLE_REASONS:
                    self._pause_pushing()
            else:
                self.metrics.refused.labels(message.reason).inc()
            if outcome.kind is RefusalKind.REBUILT:
                log.info("the hub refused update %s of %s (%s): %s", message.update_id,
                         message.guid, message.reason, message.message)
            answered.set()
        elif isinstance(message, p.Error):
            raise AuthError(message.message, code=message.reason)

    def _pause_pushing(self) -> None:
        """The hub refused for its own trouble: give it a moment (longer each time in a row)."""
        first, longest = RETRY_PAUSE_S
        self._retry_pause = min(longest, self._retry_pause * 2 or first)
        self._retry_at = time.monotonic() + self._retry_pause

    async def next_batch(self, window: PushWindow) -> p.PushBatch | None:
        """The next batch to push, counted in ``window``, when the window is open and the
        outbox has more (it may be empty: what was read is all awaiting answers already)."""
        if not window.open:
            return None
        entries = await self.replica.outbox(self.batch, after=window.after)
        if not entries:
            return None
        batch = window.sendable(entries)
        window.sent(batch, self.clock(), read_to=entries[-1].position)
        self.metrics.pushed.inc(len(batch))
        return p.PushBatch(tuple(p.PushItem(e.update_id, e.guid, e.data) for e in batch))

    async def _push_loop(self, ws: websockets.ClientConnection, window: PushWindow,
                         answered: asyncio.Event) -> None:
        """Push the outbox in order, at most ``window.limit`` batches unanswered; a batch
        unanswered far too long ends the session (the next one pushes it again: the hub
        answers a repeated id with its first verdict)."""
        while True:
            pause = self._retry_at - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            self._outbox_event.clear()
            answered.clear()
            batch = await self.next_batch(window)
            if batch is not None:
                if batch.items:
                    await ws.send(p.encode(batch))
                continue
            if window.overdue(time.monotonic()):
                raise TimeoutError(f"the hub did not answer a push in {window.timeout_s:.0f}s")
            waiters = [asyncio.create_task(self._outbox_event.wait()),
                       asyncio.create_task(answered.wait())]
            try:
                await asyncio.wait(waiters, timeout=IDLE_CHECK_S,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
