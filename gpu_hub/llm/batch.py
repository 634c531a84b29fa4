"""LLM batch jobs: many chats run as one durable job, each item's result stored as it ends
(a job resumed by another hub skips the items already done)."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from core.errors import VelocityError
from core.identity import Principal, Role
from gpu_hub.errors import GpuUnavailable
from gpu_hub.jobs import Job
from gpu_hub.llm.client import LlmRuntime, Message
from gpu_hub.runner import Progress, RetryElsewhere


class BatchItem(BaseModel):
    messages: list[dict[str, str]] = Field(min_length=1, max_length=200)


class BatchRequest(BaseModel):
    items: list[BatchItem] = Field(min_length=1, max_length=1000)
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    role: Role = Role.JUNIOR_BROKER
    """The requester's role when submitted (usage is recorded on their behalf)."""


class LlmBatchHandler:
    def __init__(self, llm: LlmRuntime, pool: asyncpg.Pool) -> None:
        self.llm, self.pool = llm, pool

    async def __call__(self, job: Job, progress: Progress) -> dict[str, Any]:
        request = BatchRequest(**job.request)
        principal = Principal(job.tenant_id, job.user_id, request.role)
        done = {r["item"] for r in await self.pool.fetch(
            "SELECT item FROM gpu_llm_results WHERE tenant_id = $1 AND job_id = $2",
            job.tenant_id, job.id)}
        failed = 0
        for index, item in enumerate(request.items):
            if index in done:
                continue
            messages: list[Message] = [dict(m) for m in item.messages]
            try:
                reply = await self.llm.chat(principal, messages, model=request.model,
                                            purpose="batch", max_tokens=request.max_tokens)
                row: tuple[Any, ...] = ("done", reply.content, None, reply.prompt_tokens,
                                        reply.completion_tokens)
            except GpuUnavailable as exc:
                raise RetryElsewhere(f"LLM unavailable: {exc}") from exc
            except VelocityError as exc:
                failed += 1
                row = ("failed", None, str(exc), 0, 0)
            await self.pool.execute(
                "INSERT INTO gpu_llm_results (tenant_id, job_id, item, status, output, error, "
                "prompt_tokens, completion_tokens) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
                "ON CONFLICT DO NOTHING", job.tenant_id, job.id, index, *row)
            await progress((index + 1) / len(request.items))
        return {"items": len(request.items), "failed": failed}

    async def results(self, tenant_id: str, job_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT item, status, output, error, prompt_tokens, completion_tokens "
            "FROM gpu_llm_results WHERE tenant_id = $1 AND job_id = $2 ORDER BY item",
            tenant_id, job_id)
        return [dict(r) for r in rows]
