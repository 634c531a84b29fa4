"""The LLM runtime: chat completions through the `openai` client against any OpenAI-compatible
server (SGLang in production), with timeouts, retries with backoff on transient errors, a
per-tenant concurrency limit and token usage recorded in PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import openai
from openai import AsyncOpenAI

from core.identity import Principal
from core.ids import new_id
from gpu_hub.errors import BadRequest, GpuUnavailable
from gpu_hub.settings import GpuSettings, check_model_id

T = TypeVar("T")
Message = dict[str, str]
_TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ChatResult:
    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    finish_reason: str | None = None


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError | openai.APITimeoutError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in _TRANSIENT_STATUS


class LlmRuntime:
    """One OpenAI-compatible endpoint; every call is bounded, retried and accounted."""

    def __init__(self, settings: GpuSettings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self._client: AsyncOpenAI | None = None
        if settings.llm_base_url:
            self._client = AsyncOpenAI(base_url=settings.llm_base_url,
                                       api_key=settings.llm_api_key, max_retries=0,
                                       timeout=settings.llm_timeout_s)
        self._slots: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.llm_tenant_concurrency))

    @property
    def configured(self) -> bool:
        return self._client is not None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    def _require(self) -> AsyncOpenAI:
        if self._client is None:
            raise GpuUnavailable("no LLM configured; set VELOCITY_LLM_BASE_URL to the SGLang "
                                 "OpenAI-compatible URL (…/v1)")
        return self._client

    def model_for(self, model: str | None) -> str:
        try:
            return check_model_id(model or self.settings.llm_model)
        except ValueError as exc:
            raise BadRequest(str(exc), code="bad_model") from None

    @asynccontextmanager
    async def _slot(self, tenant_id: str) -> AsyncIterator[None]:
        async with self._slots[tenant_id]:
            yield

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call(), attempt
            except openai.APIError as exc:
                if not _transient(exc) or attempt > self.settings.llm_retries:
                    raise self._mapped(exc) from exc
            await asyncio.sleep(self.settings.llm_backoff_s * 2 ** (attempt - 1))

    @staticmethod
    def _mapped(exc: openai.APIError) -> Exception:
        if isinstance(exc, openai.APIStatusError) and exc.status_code < 500 and not _transient(
                exc):
            return BadRequest(f"the LLM refused the request ({exc.status_code}): "
                              f"{str(exc)[:300]}", code="llm_refused")
        return GpuUnavailable(f"the LLM is unavailable ({type(exc).__name__}); check SGLang "
                              "on the GPU box or the GPU mode")

    async def chat(self, principal: Principal, messages: list[Message], *,
                   model: str | None = None, purpose: str = "chat",
                   max_tokens: int | None = None, temperature: float | None = None
                   ) -> ChatResult:
        """One completion, retried on transient errors, its usage recorded."""
        client = self._require()
        served = self.model_for(model)
        started = time.monotonic()
        extra: dict[str, Any] = {}
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        if temperature is not None:
            extra["temperature"] = temperature
        async with self._slot(principal.tenant_id):
            response, attempts = await self._with_retries(
                lambda: client.chat.completions.create(
                    model=served, messages=messages, **extra))  # type: ignore[arg-type]
        choice = response.choices[0] if response.choices else None
        usage = response.usage
        result = ChatResult(
            content=(choice.message.content or "") if choice else "", model=response.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0, attempts=attempts,
            finish_reason=choice.finish_reason if choice else None)
        await self.record_usage(principal, served, purpose, result.prompt_tokens,
                                result.completion_tokens, attempts, started)
        return result

    async def stream(self, principal: Principal, messages: list[Message], *,
                     model: str | None = None, max_tokens: int | None = None
                     ) -> AsyncIterator[str]:
        """Text deltas of one streamed completion (retried only before the first delta)."""
        client = self._require()
        served = self.model_for(model)
        started = time.monotonic()
        extra: dict[str, Any] = {"max_tokens": max_tokens} if max_tokens is not None else {}
        async with self._slot(principal.tenant_id):
            stream, attempts = await self._with_retries(
                lambda: client.chat.completions.create(
                    model=served, messages=messages, stream=True,  # type: ignore[arg-type]
                    stream_options={"include_usage": True}, **extra))
            prompt_tokens = completion_tokens = 0
            try:
                async for chunk in stream:
                    if chunk.usage is not None:
                        prompt_tokens = chunk.usage.prompt_tokens
                        completion_tokens = chunk.usage.completion_tokens
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content
            except openai.APIError as exc:
                raise self._mapped(exc) from exc
        await self.record_usage(principal, served, "chat_stream", prompt_tokens,
                                completion_tokens, attempts, started)

    async def record_usage(self, principal: Principal, model: str, purpose: str,
                           prompt_tokens: int, completion_tokens: int, attempts: int,
                           started: float) -> None:
        await self.pool.execute(
            "INSERT INTO gpu_llm_usage (tenant_id, id, user_id, model, purpose, prompt_tokens,"
            " completion_tokens, attempts, latency_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            principal.tenant_id, new_id(), principal.user_id, model, purpose, prompt_tokens,
            completion_tokens, attempts, int((time.monotonic() - started) * 1000))

    async def models(self) -> list[str]:
        """Model ids the server lists (``/v1/models``)."""
        client = self._require()
        page, _ = await self._with_retries(client.models.list)
        return [m.id for m in page.data]
