"""The edge's sync client: keeps a websocket session with the hub, pulls from its cursor,
pushes the outbox in batches, and reconnects with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime
from types import TracebackType

import websockets

from core.auth import DeviceKey
from core.errors import AuthError, ProtocolError
from edge_agent.device import Pairing
from edge_agent.replica import Replica
from sync import protocol as p

log = logging.getLogger(__name__)
PERMANENT_CLOSE = {p.CloseCode.FORBIDDEN, p.CloseCode.UNSUPPORTED_VERSION}


class SyncClient:
    """An `async with` service owning the session task; local writes call `poke()`."""

    def __init__(
        self, replica: Replica, pairing: Pairing, key: DeviceKey, *, batch: int = 200,
        backoff_base_s: float = 0.5, backoff_cap_s: float = 60.0,
    ) -> None:
        self.replica = replica
        self.pairing = pairing
        self.key = key
        self.batch = batch
        self._base, self._cap = backoff_base_s, backoff_cap_s
        self._outbox_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.online = False
        self.caught_up = asyncio.Event()
        self.incoming = 0
        """Snapshots the hub announced for the current bootstrap (0 when resuming)."""
        self.last_sync: datetime | None = None
        self.last_error: str | None = None
        self.stopped_reason: str | None = None
        self.attempts = 0

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

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        return random.uniform(0, min(self._cap, self._base * 2 ** attempt))

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
                self.attempts = 0
            except asyncio.CancelledError:
                raise
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                self.last_error = f"connection closed ({code})"
                if code in PERMANENT_CLOSE:
                    self.stopped_reason = exc.rcvd.reason if exc.rcvd else "refused"
                    self.online = False
                    return
            except (OSError, TimeoutError, ProtocolError, AuthError,
                    websockets.InvalidHandshake) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, AuthError) and exc.code in ("revoked", "blocked",
                                                               "unknown_device"):
                    self.stopped_reason = exc.message
                    self.online = False
                    return
            except Exception as exc:  # anything else: keep the device syncing, and say why
                log.exception("sync session failed; retrying")
                self.last_error = f"{type(exc).__name__}: {exc}"
            self.online = False
            self.caught_up.clear()
            await asyncio.sleep(self.backoff(self.attempts))
            self.attempts += 1

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
            self.last_error = None
            in_flight: set[str] = set()
            acked = asyncio.Event()
            pusher = asyncio.create_task(self._push_loop(ws, in_flight, acked))
            # Messages are handled strictly in order, but the next frame is read and decoded
            # while the previous one is being applied (its SQLite work runs in a thread):
            # at most one message waits, so memory stays bounded by two frames.
            handling: asyncio.Task[None] | None = None
            try:
                async for frame in ws:
                    message = p.decode(frame)  # type: ignore[arg-type]
                    previous = handling
                    handling = asyncio.create_task(
                        self._handle_after(previous, message, in_flight, acked))
                    if previous is not None:
                        await previous
                if handling is not None:
                    await handling
            finally:
                if handling is not None:
                    handling.cancel()  # no-op when done; its error, if any, was raised above
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await handling
                pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pusher

    async def _handle_after(self, previous: asyncio.Task[None] | None, message: p.Message,
                            in_flight: set[str], acked: asyncio.Event) -> None:
        if previous is not None:
            await previous  # in order; a failed predecessor fails this one too
        await self._handle(message, in_flight, acked)

    async def _handle(self, message: p.Message, in_flight: set[str], acked: asyncio.Event
                      ) -> None:
        if isinstance(message, p.PullBatch):
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
            in_flight.difference_update(ids)
            self.last_sync = datetime.now(UTC)
            acked.set()
        elif isinstance(message, p.Refusal):
            await self.replica.refuse(message.update_id, message.guid, message.reason,
                                      message.message)
            in_flight.discard(message.update_id)
            acked.set()
            self.poke()
        elif isinstance(message, p.Error):
            raise AuthError(message.message, code=message.reason)

    async def _push_loop(self, ws: websockets.ClientConnection, in_flight: set[str],
                         acked: asyncio.Event) -> None:
        while True:
            entries = [e for e in await self.replica.outbox(self.batch + len(in_flight))
                       if e.update_id not in in_flight][: self.batch]
            if entries:
                in_flight.update(e.update_id for e in entries)
                await ws.send(p.encode(p.PushBatch(tuple(
                    p.PushItem(e.update_id, e.guid, e.data) for e in entries))))
                continue
            self._outbox_event.clear()
            acked.clear()
            waiters = [asyncio.create_task(self._outbox_event.wait()),
                       asyncio.create_task(acked.wait())]
            try:
                await asyncio.wait(waiters, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            if not self._outbox_event.is_set() and not acked.is_set() and in_flight:
                in_flight.clear()  # no answer in 30 s: send again (the hub deduplicates)
