"""The ComfyUI worker pool (one worker per GPU, from `COMFYUI_URLS`): health checks, least-loaded
routing, and a job moved off a worker that died or hung."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from gpu_hub.media.comfy import ComfyWorker, WorkerFailed, no_workers

HEALTH_TIMEOUT_S = 5.0


@dataclass
class WorkerState:
    worker: ComfyWorker
    healthy: bool = False
    queue_depth: int = 0
    """Prompts on the worker at the last health check."""
    foreign: int = 0
    """Of those, prompts that were not this hub's renders (another hub's, or manual use)."""
    in_flight: int = 0
    checked_at: float = 0.0
    error: str | None = None
    quarantined_until: float = 0.0
    picked_at: float = 0.0
    devices: list[str] = field(default_factory=list)

    @property
    def load(self) -> int:
        return self.in_flight + self.foreign

    def public(self) -> dict[str, Any]:
        return {"url": self.worker.url, "healthy": self.healthy, "queue_depth": self.queue_depth,
                "in_flight": self.in_flight, "error": self.error, "devices": self.devices}


class ComfyPool:
    """``async with`` owns the health-check task; `pick` routes to the least-loaded worker."""

    def __init__(self, urls: list[str], *, health_interval_s: float) -> None:
        self.states = [WorkerState(ComfyWorker(u)) for u in urls]
        self.interval = health_interval_s
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ComfyPool:
        await self.check_all()
        self._task = asyncio.create_task(self._watch(), name="comfy-health")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for state in self.states:
            await state.worker.aclose()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check_all()

    async def check_all(self) -> None:
        await asyncio.gather(*(self._check(s) for s in self.states))

    async def _check(self, state: WorkerState) -> None:
        timeout = max(HEALTH_TIMEOUT_S, self.interval)
        try:
            stats = await asyncio.wait_for(state.worker.system_stats(), timeout)
            ours = state.in_flight
            state.queue_depth = await asyncio.wait_for(state.worker.queue_depth(), timeout)
            # a render of ours may end while /queue answers: never count it as someone else's
            state.foreign = max(0, state.queue_depth - max(ours, state.in_flight))
            state.devices = [str(d.get("name", "")) for d in stats.get("devices", [])]
            if time.monotonic() >= state.quarantined_until:
                state.healthy, state.error = True, None
        except (WorkerFailed, TimeoutError, ValueError, KeyError) as exc:
            state.healthy, state.error = False, str(exc) or type(exc).__name__
        state.checked_at = time.monotonic()

    @property
    def configured(self) -> bool:
        return bool(self.states)

    def healthy(self) -> list[WorkerState]:
        return [s for s in self.states if s.healthy]

    def pick(self) -> WorkerState:
        """The healthy worker with the least work, the one idle longest among equals."""
        candidates = self.healthy()
        if not candidates:
            raise no_workers()
        chosen = min(candidates, key=lambda s: (s.load, s.picked_at))
        chosen.picked_at = time.monotonic()
        return chosen

    def mark_failed(self, state: WorkerState, reason: str, quarantine_s: float) -> None:
        """Take a worker out of routing for ``quarantine_s`` (a hung worker still answers
        health checks)."""
        state.healthy, state.error = False, reason
        state.quarantined_until = time.monotonic() + quarantine_s
