"""A fault-injecting TCP proxy on loopback: cuts, delays, stalls, refusals, half-open links."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class FaultProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port``, with faults on demand.

    ``cut()`` aborts every open connection (the peers see a reset, no close frame);
    ``refuse()`` / ``accept()`` stop and resume taking connections on the same port;
    ``delay_s`` holds each chunk before forwarding it; ``stall()`` stops forwarding without
    closing anything (a half-open link: both ends think they are connected) until ``flow()``.
    """

    def __init__(self, target_port: int, port: int = 0) -> None:
        self.target_port = target_port
        self.port = port
        self.delay_s = 0.0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultProxy:
        await self.accept()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.refuse()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def accept(self) -> None:
        """Take connections (again) on the proxy's port."""
        if self._server is None:
            self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port,
                                                      reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stop taking connections: a connect attempt is refused, as if the hub were down."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def cut(self) -> None:
        """Abort every open connection."""
        for down, up in list(self._links):
            for writer in (down, up):
                writer.transport.abort()
        self._links.clear()
        self.cuts += 1

    def stall(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    async def retarget(self, target_port: int) -> None:
        """Send new connections elsewhere (a fail-over), cutting the open ones."""
        self.target_port = target_port
        self.cut()

    async def _link(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            down_w.transport.abort()
            return
        link = (down_w, up_w)
        self._links.add(link)
        pumps = [asyncio.create_task(self._pump(down_r, up_w)),
                 asyncio.create_task(self._pump(up_r, down_w))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
                self._tasks.discard(pump)
            self._links.discard(link)
            for writer in link:
                writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while chunk := await reader.read(65536):
                await self._flowing.wait()
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(chunk)
                await writer.drain()
