"""Runs queued GPU jobs: claims what the GPU mode allows, keeps the lease alive, stops a job
that was cancelled, retries a job whose worker failed, and records the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

from core.errors import VelocityError
from core.ids import new_id
from gpu_hub.jobs import Job, JobKind, JobStatus, JobStore
from gpu_hub.mode import ModeControl

log = logging.getLogger(__name__)
Progress = Callable[[float], Awaitable[None]]


class Handler(Protocol):
    async def __call__(self, job: Job, progress: Progress) -> dict[str, Any]: ...


class RetryElsewhere(VelocityError):
    """The worker running a job died or hung; the job goes back to the queue."""

    code = "retry"


class JobRunner:
    """Per job kind, up to ``slots`` jobs at a time on this hub; every hub may run one. Idle,
    it looks at the queue every ``poll_s`` and at once when woken (a submission on this hub,
    a mode change, a job ending)."""

    def __init__(self, jobs: JobStore, mode: ModeControl, handlers: Mapping[JobKind, Handler],
                 *, slots: Mapping[JobKind, int], max_attempts: int, lease_s: float = 30.0,
                 poll_s: float = 1.0) -> None:
        self.jobs, self.mode, self.handlers = jobs, mode, handlers
        self.slots, self.max_attempts = slots, max_attempts
        self.lease_s, self.poll_s = lease_s, poll_s
        self.name = f"hub-{new_id()[-12:]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._wake = {kind: asyncio.Event() for kind in handlers}

    async def __aenter__(self) -> JobRunner:
        for kind, handler in self.handlers.items():
            self._tasks.append(asyncio.create_task(
                self._dispatch(kind, handler), name=f"gpu-{kind.value}"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="gpu-housekeeping"))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        for task in (*self._tasks, *self._running):
            task.cancel()
        for task in (*self._tasks, *self._running):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """A job was submitted or the mode changed: look at the queue now."""
        for event in self._wake.values():
            event.set()

    async def _housekeeping(self) -> None:
        while True:
            try:
                await self.jobs.recover_expired()
                await self.mode.settle()
            except Exception:  # the database may blink; try again next round
                log.exception("GPU job housekeeping failed")
            await asyncio.sleep(max(self.poll_s, self.lease_s / 3))

    async def _dispatch(self, kind: JobKind, handler: Handler) -> None:
        wake = self._wake[kind]
        free = asyncio.Semaphore(self.slots.get(kind, 1))
        while True:
            try:
                await free.acquire()
                state = await self.mode.state()
                if state.draining:
                    state = await self.mode.settle()
                job = (await self.jobs.claim([kind], self.name, self.lease_s)
                       if kind in state.runnable else None)
            except Exception:
                free.release()
                log.exception("GPU job dispatch failed; retrying")
                await asyncio.sleep(self.poll_s)
                continue
            if job is None:
                free.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_s)
                wake.clear()
                continue
            task = asyncio.create_task(self._run(job, handler), name=f"gpu-job-{job.id}")
            self._running.add(task)

            def ended(t: asyncio.Task[None], free: asyncio.Semaphore = free) -> None:
                self._running.discard(t)
                free.release()
                self.wake()

            task.add_done_callback(ended)

    async def _run(self, job: Job, handler: Handler) -> None:
        try:
            await self._supervise(job, handler)
        except Exception:
            log.exception("GPU job %s could not be recorded; its lease will expire", job.id)

    async def _supervise(self, job: Job, handler: Handler) -> None:
        latest: list[float] = []

        async def progress(fraction: float) -> None:
            latest[:] = [min(max(fraction, 0.0), 1.0)]

        work = asyncio.create_task(handler(job, progress))
        cancelled = False
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=min(0.5, self.lease_s / 3))
                if work.done():
                    break
                if not await self.jobs.heartbeat(job, self.lease_s,
                                                 latest[0] if latest else None):
                    cancelled = True
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({work})
        except asyncio.CancelledError:
            work.cancel()
            raise
        if cancelled or work.cancelled():
            await self.jobs.finish(job, JobStatus.CANCELLED, error="cancelled")
            return
        exc = work.exception()
        if exc is None:
            await self.jobs.finish(job, JobStatus.DONE, result=work.result())
        elif isinstance(exc, RetryElsewhere) and job.attempts < self.max_attempts:
            await self.jobs.requeue(job, str(exc))
        elif isinstance(exc, VelocityError):
            await self.jobs.finish(job, JobStatus.FAILED, error=str(exc))
        else:
            log.error("GPU job %s failed", job.id, exc_info=exc)
            await self.jobs.finish(job, JobStatus.FAILED, error="internal error")
