"""`/api/runtime/…`: the LLM runtime (providers, chat, streaming chat, batch jobs) and the
status, progress and cancellation of every GPU job."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from core.errors import VelocityError
from gpu_hub.api.deps import FrontDep, PrincipalDep
from gpu_hub.jobs import JobKind
from gpu_hub.llm.batch import BatchItem, BatchRequest

router = APIRouter(prefix="/api/runtime", tags=["runtime"])
IdempotencyKey = Annotated[str | None, Header(max_length=200)]


class ChatMessage(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = Field(max_length=200_000)


class ChatRequest(BaseModel):
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    temperature: float | None = Field(None, ge=0, le=2)
    stream: bool = False


class BatchBody(BaseModel):
    items: list[BatchItem] = Field(min_length=1, max_length=1000)
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1, le=32_768)


@router.get("/llm/providers")
async def providers(caller: PrincipalDep, front: FrontDep) -> list[dict[str, Any]]:
    """The configured OpenAI-compatible endpoint, its default model and what it serves."""
    settings = front.settings
    entry: dict[str, Any] = {"id": "sglang", "base_url": settings.llm_base_url,
                             "default_model": settings.llm_model,
                             "configured": front.llm.configured, "models": [],
                             "available": False}
    if front.llm.configured:
        try:
            entry["models"] = await front.llm.models()
            entry["available"] = True
        except VelocityError as exc:
            entry["error"] = str(exc)
    entry["mode"] = (await front.mode.state()).model_dump(mode="json")
    return [entry]


@router.post("/llm/chat", response_model=None)
async def chat(body: ChatRequest, caller: PrincipalDep,
               front: FrontDep) -> dict[str, Any] | StreamingResponse:
    await front.require_llm()
    messages = [m.model_dump() for m in body.messages]
    if body.stream:
        deltas = front.llm.stream(caller, messages, model=body.model,
                                  max_tokens=body.max_tokens)

        async def events() -> AsyncIterator[str]:
            try:
                async for delta in deltas:
                    yield f"data: {json.dumps({'delta': delta})}\n\n"
            except VelocityError as exc:
                yield f"data: {json.dumps({'error': exc.code, 'detail': exc.message})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    reply = await front.llm.chat(caller, messages, model=body.model,
                                 max_tokens=body.max_tokens, temperature=body.temperature)
    return {"content": reply.content, "model": reply.model, "finish_reason":
            reply.finish_reason, "attempts": reply.attempts,
            "usage": {"prompt_tokens": reply.prompt_tokens,
                      "completion_tokens": reply.completion_tokens}}


@router.post("/llm/batch", status_code=202)
async def batch(body: BatchBody, caller: PrincipalDep, front: FrontDep,
                idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """A durable batch job; the same ``Idempotency-Key`` returns the same job."""
    front.llm.model_for(body.model)
    request = BatchRequest(items=body.items, model=body.model, max_tokens=body.max_tokens,
                           role=caller.role)
    job, _ = await front.submit(caller, JobKind.LLM_BATCH, request.model_dump(mode="json"),
                                idempotency_key)
    return job.public()


@router.get("/llm/jobs/{job_id}")
async def llm_job(job_id: str, caller: PrincipalDep, front: FrontDep) -> dict[str, Any]:
    return (await front.own_job(caller, job_id, JobKind.LLM_BATCH)).public()


@router.get("/llm/jobs/{job_id}/results")
async def llm_job_results(job_id: str, caller: PrincipalDep,
                          front: FrontDep) -> dict[str, Any]:
    job = await front.own_job(caller, job_id, JobKind.LLM_BATCH)
    return {"job": job.public(), "results": await front.batch.results(job.tenant_id, job.id)}


@router.get("/jobs")
async def jobs(caller: PrincipalDep, front: FrontDep, open_only: bool = False
               ) -> list[dict[str, Any]]:
    """The caller's GPU jobs (a manager: the tenant's), newest first."""
    found = await front.jobs.list(caller.tenant_id, open_only=open_only)
    return [j.public() for j in found if caller.is_manager or j.user_id == caller.user_id]


@router.get("/jobs/{job_id}")
async def job(job_id: str, caller: PrincipalDep, front: FrontDep) -> dict[str, Any]:
    return (await front.own_job(caller, job_id)).public()


@router.post("/jobs/{job_id}/cancel")
async def cancel(job_id: str, caller: PrincipalDep, front: FrontDep) -> dict[str, Any]:
    await front.own_job(caller, job_id)
    return (await front.jobs.cancel(caller.tenant_id, job_id)).public()
