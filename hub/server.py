"""Serve a hub over HTTP and websockets with uvicorn, as an `async with` service."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType

import uvicorn

from hub.app import SYNC_PATH, create_app
from hub.service import Hub
from hub.ws_compression import HubWebSocketProtocol


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class HubServer:
    """Starts the hub, then uvicorn on ``host:port``; stops both on exit."""

    def __init__(self, hub: Hub, host: str | None = None, port: int | None = None) -> None:
        self.hub = hub
        self.host = host or hub.settings.host
        self.port = port if port is not None else hub.settings.port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sync_url(self) -> str:
        return f"ws://{self.host}:{self.port}{SYNC_PATH}"

    async def __aenter__(self) -> HubServer:
        await self.hub.__aenter__()
        try:
            if self.port == 0:
                self.port = free_port(self.host)
            config = uvicorn.Config(
                create_app(self.hub), host=self.host, port=self.port, log_level="warning",
                lifespan="on", ws_max_size=self.hub.limits.max_frame_bytes, ws=HubWebSocketProtocol,
            )
            self._server = uvicorn.Server(config)
            self._task = asyncio.create_task(self._server.serve(), name="velocity-hub-http")
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError(f"hub could not listen on {self.host}:{self.port}")
                await asyncio.sleep(0.02)
        except BaseException:
            await self.hub.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=10)
        await self.hub.__aexit__(exc_type, exc, tb)

    async def serve_forever(self) -> None:
        if self._task is not None:
            await self._task
