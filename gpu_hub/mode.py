"""The GPU mode: an operator's decision of what the GPU box runs — `llm` (SGLang on all four
GPUs), `media` (one ComfyUI worker per GPU) or `split` — shared by every hub through PostgreSQL.

A switch drains: jobs the new mode cannot run finish (or are cancelled when the operator says
so) before jobs only the new mode can run start; queued jobs wait for a mode that runs them.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum

import asyncpg
from pydantic import BaseModel

from gpu_hub.jobs import JobKind, JobStore


class GpuMode(StrEnum):
    LLM = "llm"
    MEDIA = "media"
    SPLIT = "split"


RUNS: dict[GpuMode, frozenset[JobKind]] = {
    GpuMode.LLM: frozenset({JobKind.LLM_BATCH, JobKind.ORACLE_QUESTION}),
    GpuMode.MEDIA: frozenset({JobKind.DREAM_WEAVER}),
    GpuMode.SPLIT: frozenset({JobKind.LLM_BATCH, JobKind.DREAM_WEAVER, JobKind.ORACLE_QUESTION}),
}
SERVES_CHAT = frozenset({GpuMode.LLM, GpuMode.SPLIT})


class ModeState(BaseModel):
    mode: GpuMode
    previous: GpuMode | None = None
    draining: bool = False

    @property
    def runnable(self) -> frozenset[JobKind]:
        """Job kinds that may start now: while draining, only what both modes run."""
        if self.draining and self.previous is not None:
            return RUNS[self.mode] & RUNS[self.previous]
        return RUNS[self.mode]

    @property
    def serves_llm(self) -> bool:
        both = self.draining and self.previous is not None
        return self.mode in SERVES_CHAT and (not both or self.previous in SERVES_CHAT)


class ModeControl:
    def __init__(self, pool: asyncpg.Pool, jobs: JobStore, default: GpuMode) -> None:
        self.pool, self.jobs, self.default = pool, jobs, default

    async def state(self) -> ModeState:
        value = await self.pool.fetchval("SELECT value FROM gpu_state WHERE key = 'mode'")
        return ModeState(**value) if value else ModeState(mode=self.default)

    async def _save(self, state: ModeState) -> None:
        await self.pool.execute(
            "INSERT INTO gpu_state (key, value) VALUES ('mode', $1) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            state.model_dump(mode="json"))

    async def switch(self, target: GpuMode, *, cancel_running: bool = False,
                     wait_s: float = 0.0) -> ModeState:
        """Begin switching to ``target``; waits up to ``wait_s`` for the drain to finish."""
        current = await self.state()
        if current.mode is target and not current.draining:
            return current
        previous = current.previous if current.mode is target else current.mode
        if current.mode is not target:
            await self._save(ModeState(mode=target, previous=previous, draining=True))
        leaving = sorted(RUNS[previous or target] - RUNS[target])
        if cancel_running and leaving:
            await self.pool.execute(
                "UPDATE gpu_jobs SET cancel_requested = true WHERE status = 'running' "
                "AND kind = ANY($1::text[])", [k.value for k in leaving])
        deadline = time.monotonic() + wait_s
        while True:
            state = await self.settle()
            if not state.draining or time.monotonic() >= deadline:
                return state
            await asyncio.sleep(0.05)

    async def settle(self) -> ModeState:
        """End a drain once no job the new mode cannot run is still running."""
        state = await self.state()
        if state.draining and state.previous is not None:
            leaving = sorted(RUNS[state.previous] - RUNS[state.mode])
            if not leaving or await self.jobs.running(leaving) == 0:
                state = ModeState(mode=state.mode, previous=state.previous, draining=False)
                await self._save(state)
        return state
