"""Presence across hub processes: every `BEAT_S` each hub marks the devices that hold a live sync
session on it as seen now, so any hub's device list can tell a device connected to another hub
(idle or not) from one that is gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from hub.connections import Connections
from hub.storage.devices import DeviceStore

log = logging.getLogger(__name__)
BEAT_S = 15.0
ONLINE_WITHIN_S = 2 * BEAT_S + 5
"""A device seen this recently by any hub counts as online (two beats and some slack)."""


class Presence:
    """An `async with` service owning the beat task of one hub process."""

    def __init__(self, devices: DeviceStore, connections: Connections) -> None:
        self._devices, self._connections = devices, connections
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Presence:
        self._task = asyncio.create_task(self._run(), name="velocity-presence")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(BEAT_S)
            live = sorted({s.device_id for s in self._connections.sessions()})
            if not live:
                continue
            try:
                await self._devices.mark_seen(live)
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("presence beat failed: %s", exc)
