"""The GPU front as one `async with` service: the LLM runtime, the Oracle, durable GPU jobs,
the GPU mode and the job runner."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import asyncpg

from core.errors import NotFound
from core.identity import Principal
from core.settings import load_settings
from gpu_hub.errors import GpuUnavailable
from gpu_hub.jobs import Job, JobKind, JobStore
from gpu_hub.llm.batch import LlmBatchHandler
from gpu_hub.llm.client import LlmRuntime
from gpu_hub.media.dream_weaver import DreamWeaverHandler
from gpu_hub.media.pool import ComfyPool
from gpu_hub.mode import GpuMode, ModeControl
from gpu_hub.oracle.question_job import OracleQuestionHandler
from gpu_hub.oracle.reader import ensure_reader_role
from gpu_hub.oracle.service import Oracle
from gpu_hub.runner import Handler, JobRunner
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
            self.jobs = JobStore(self.pool)
            self.mode = ModeControl(self.pool, self.jobs, GpuMode(self.settings.gpu_mode))
            self.batch = LlmBatchHandler(self.llm, self.pool)
            self.comfy = await self._stack.enter_async_context(ComfyPool(
                self.settings.comfyui_urls,
                health_interval_s=self.settings.comfy_health_interval_s))
            handlers: dict[JobKind, Handler] = {
                JobKind.LLM_BATCH: self.batch,
                JobKind.DREAM_WEAVER: DreamWeaverHandler(self.comfy, self.llm, self.mode,
                                                         self.settings),
                JobKind.ORACLE_QUESTION: OracleQuestionHandler(self.oracle)}
            self.runner = await self._stack.enter_async_context(JobRunner(
                self.jobs, self.mode, handlers,
                slots={JobKind.LLM_BATCH: self.settings.llm_tenant_concurrency,
                       JobKind.DREAM_WEAVER: self.settings.dream_weaver_slots,
                       JobKind.ORACLE_QUESTION: self.settings.llm_tenant_concurrency},
                max_attempts=self.settings.comfy_attempts))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def submit(self, principal: Principal, kind: JobKind, request: dict[str, Any],
                     idempotency_key: str | None = None) -> tuple[Job, bool]:
        """A durable job (the existing one for a repeated key); the runner looks at once."""
        job, created = await self.jobs.submit(principal, kind, request, idempotency_key)
        self.runner.wake()
        return job, created

    async def own_job(self, caller: Principal, job_id: str, kind: JobKind | None = None
                      ) -> Job:
        """The caller's job (a manager: any of the tenant's); another's is a 404."""
        job = await self.jobs.get(caller.tenant_id, job_id)
        if (kind is not None and job.kind is not kind) or (
                job.user_id != caller.user_id and not caller.is_manager):
            raise NotFound(f"no job {job_id}")
        return job

    async def require_llm(self) -> None:
        """Interactive LLM calls need the LLM configured and a mode that serves it."""
        state = await self.mode.state()
        if not state.serves_llm:
            raise GpuUnavailable(f"the GPU box is in {state.mode.value} mode"
                                 f"{' (draining)' if state.draining else ''}; an operator "
                                 "switches with `velocity gpu mode llm` or `split`")

    async def worker_health(self) -> list[dict[str, Any]]:
        """The ComfyUI workers as last checked (none configured: empty)."""
        return [s.public() for s in self.comfy.states]
