"""Network-change wake: notice that the device's way to the hub changed (Wi-Fi to LTE, a new
DHCP lease, a VPN up or down, the network back after none) and tell the sync client at once.

The watch polls a *route fingerprint*: the host's interface names and, for each address of the
hub, the local address the operating system would send from to reach it (a UDP ``connect``
consults the routing table and sends nothing). It costs a few system calls per poll and works the
same on Linux, macOS and Windows, where netlink (Linux only) or SystemConfiguration (Apple only)
would each need their own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Hashable
from types import TracebackType

log = logging.getLogger(__name__)
MAX_ADDRESSES = 4
"""Addresses of the hub looked at (the first of them are the ones a connection tries)."""


def route_fingerprint(host: str, port: int) -> Hashable:
    """The interfaces and the local source address towards each of the hub's addresses (or why
    there is none): equal values mean the way to the hub did not change."""
    names = tuple(sorted(name for _, name in socket.if_nameindex()))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        return names, f"unresolved ({exc.errno})"
    sources: list[str] = []
    for family, kind, proto, _, address in infos[:MAX_ADDRESSES]:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.connect(address)
                sources.append(str(probe.getsockname()[0]))
            except OSError as exc:
                sources.append(f"no route ({exc.errno})")
    return names, tuple(sources)


class NetworkWatch:
    """An `async with` service polling ``probe`` every ``interval_s`` seconds (in a worker
    thread: resolving the hub's name may block) and calling ``on_change`` when its value
    differs from the previous one."""

    def __init__(self, probe: Callable[[], Hashable], on_change: Callable[[], None],
                 interval_s: float) -> None:
        self._probe, self._on_change, self._interval = probe, on_change, interval_s
        self._task: asyncio.Task[None] | None = None
        self.changes = 0

    async def __aenter__(self) -> NetworkWatch:
        first = await asyncio.to_thread(self._probe)
        self._task = asyncio.create_task(self._run(first), name="velocity-edge-netwatch")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, last: Hashable) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                now = await asyncio.to_thread(self._probe)
            except Exception as exc:  # keep watching: the next poll may work
                log.warning("network probe failed: %s", exc)
                continue
            if now != last:
                log.info("network changed (%s → %s): reconnecting now", last, now)
                self.changes += 1
                last = now
                self._on_change()
