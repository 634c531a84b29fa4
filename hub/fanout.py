"""Fan-out between hub processes through PostgreSQL LISTEN/NOTIFY.

Commits ``pg_notify('velocity_updates', '<tenant>:<seq>')`` inside their transaction, so the
notice is delivered only after commit, to every hub listening on the database (this one too).
A notice only wakes sessions; they then read the log from their cursor, so a lost or coalesced
notice can delay but never lose an update. Its sequence was committed (with everything before it:
the cursor rule), so a woken session reads up to it without asking for the high-water mark.
Revocations and account changes travel on ``velocity_control`` (``revoke:<device>``,
``user:<change>:<tenant>:<user>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from hub.accounts import CONTROL_CHANNEL
from hub.connections import Connections
from hub.database import Database
from hub.store import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class Fanout:
    """Owns one listening connection and a task that keeps it alive."""

    def __init__(self, db: Database, connections: Connections) -> None:
        self._db = db
        self._connections = connections
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing: set[asyncio.Task[int]] = set()

    async def __aenter__(self) -> Fanout:
        self._task = asyncio.create_task(self._run(), name="velocity-fanout")
        await asyncio.wait_for(self._ready.wait(), timeout=30)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in list(self._closing):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def publish_revocation(self, device_id: str) -> None:
        await self._db.notify(CONTROL_CHANNEL, f"revoke:{device_id}")

    def _on_update(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        tenant_id, _, last = payload.rpartition(":")
        self._connections.wake_tenant(tenant_id, int(last) if last.isdigit() else None)

    def _on_control(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        action, _, rest = payload.partition(":")
        if action == "revoke":
            self._spawn(self._connections.close_device(rest))
        elif action == "user":
            change, _, who = rest.partition(":")
            tenant_id, _, user_id = who.partition(":")
            self._spawn(self._connections.close_user(tenant_id, user_id, change))

    def _spawn(self, closing: Coroutine[Any, Any, int]) -> None:
        task = asyncio.get_running_loop().create_task(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _run(self) -> None:
        await self._db.listen_forever(
            {NOTIFY_CHANNEL: self._on_update, CONTROL_CHANNEL: self._on_control},
            what="fan-out", on_listening=self._listening)

    def _listening(self) -> None:
        self._connections.wake_all()  # anything missed while not listening
        self._ready.set()
