"""A fault-injecting TCP proxy on loopback: cuts, delays, stalls, refusals, half-open links."""

from __future__ import annotations

import asyncio
import contextlib
import socket
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
        self._listening: socket.socket | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepted: set[socket.socket] = set()
        """Every connection taken and not closed yet, from the moment it was accepted."""
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
        for conn in list(self._accepted):  # taken just now: its task never ran
            conn.close()
        self._accepted.clear()

    async def accept(self) -> None:
        """Take connections (again) on the proxy's port."""
        if self._listening is None:
            listening = socket.create_server(("127.0.0.1", self.port))
            listening.setblocking(False)
            self.port = listening.getsockname()[1]
            asyncio.get_running_loop().add_reader(listening.fileno(), self._take, listening)
            self._listening = listening

    async def refuse(self) -> None:
        """Stop taking connections: a connect attempt is refused, as if the hub were down."""
        if self._listening is not None:
            asyncio.get_running_loop().remove_reader(self._listening.fileno())
            self._listening.close()
            self._listening = None

    def _take(self, listening: socket.socket) -> None:
        """Accept what is waiting, each socket the proxy's from the moment it exists (not
        through `asyncio.start_server` or `sock_accept`, where a socket accepted as the
        listener closed could be left open)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = listening.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            conn.setblocking(False)
            self._accepted.add(conn)
            task = loop.create_task(self._link(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

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

    async def _link(self, conn: socket.socket) -> None:
        """One proxied connection, until either side ends or the proxy cuts it."""
        try:
            down_r, down_w = await asyncio.open_connection(sock=conn)
        except OSError:
            conn.close()
            self._accepted.discard(conn)
            return
        try:
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
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
                up_w.transport.abort()
        finally:
            down_w.transport.abort()
            self._accepted.discard(conn)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while chunk := await reader.read(65536):
                await self._flowing.wait()
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(chunk)
                await writer.drain()
