"""Serve an ASGI app on a free local port with uvicorn, as an `async with` block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from hub.server import free_port


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Yields the base URL (``http://127.0.0.1:port``) while the app is served."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off",
                                           ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=15)


@asynccontextmanager
async def serve_comfy(standin: Any) -> AsyncIterator[str]:
    """A ComfyUI stand-in served with its execution loop running; leaving the block kills
    both (a worker that dies mid-job)."""
    async with serve(standin.app()) as url:
        loop = asyncio.create_task(standin.execute())
        try:
            yield url
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
