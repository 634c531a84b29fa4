"""Where live devices got to, for the admin surface (``hub_devices.cursor`` and ``last_seen``),
recorded for every session of this hub process in one statement a second, off the sessions'
send loops (a statement, and a commit, per busy session per second was 50 commits a second with
50 devices online, each holding up that session's next send)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from hub.storage.devices import DeviceRegistry

log = logging.getLogger(__name__)
INTERVAL_S = 1.0


class CursorLog:
    """An `async with` service owning the task that writes the noted cursors."""

    def __init__(self, registry: DeviceRegistry, interval_s: float = INTERVAL_S) -> None:
        self._registry = registry
        self._interval_s = interval_s
        self._noted: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CursorLog:
        self._task = asyncio.create_task(self._run(), name="velocity-cursor-log")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # what was noted last, if the database is there
            await self.flush()

    def note(self, tenant_id: str, device_id: str, cursor: int) -> None:
        """The device's session sent it up to ``cursor`` (written within a second)."""
        key = (tenant_id, device_id)
        self._noted[key] = max(cursor, self._noted.get(key, 0))

    async def flush(self) -> None:
        """Write what was noted since the last flush (one statement)."""
        noted, self._noted = self._noted, {}
        if not noted:
            return
        try:
            await self._registry.seen_many(noted)
        except BaseException:
            for key, cursor in noted.items():  # kept for the next flush
                self._noted[key] = max(cursor, self._noted.get(key, 0))
            raise

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except Exception as exc:  # the database is away: the next round tries again
                log.warning("recording device cursors failed: %s", exc)
