"""The GPU front as one `async with` service: the LLM runtime and the Oracle."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

import asyncpg

from core.settings import load_settings
from gpu_hub.llm.client import LlmRuntime
from gpu_hub.oracle.reader import ensure_reader_role
from gpu_hub.oracle.service import Oracle
from gpu_hub.settings import GpuSettings


class GpuFront:
    """Everything behind ``/api/runtime``, ``/api/oracle`` and the GPU queues."""

    def __init__(self, pool: asyncpg.Pool, settings: GpuSettings | None = None) -> None:
        self.pool = pool
        self.settings = settings or load_settings(GpuSettings)
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> GpuFront:
        try:
            await ensure_reader_role(self.pool)
            self.llm = LlmRuntime(self.settings, self.pool)
            self._stack.push_async_callback(self.llm.aclose)
            self.oracle = Oracle(self.pool, self.llm, self.settings)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
