"""An OpenAI-compatible chat server like SGLang's (`/v1/models`, `/v1/chat/completions`, with
SSE streaming), whose replies, delays and failures a test scripts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

Responder = Callable[[list[dict[str, Any]]], str]


def echo(messages: list[dict[str, Any]]) -> str:
    return f"echo: {messages[-1]['content']}"


@dataclass
class SglangStandIn:
    model: str = "qwen3.6-35b-a3b"
    responder: Responder = echo
    fail_next: list[int] = field(default_factory=list)
    """HTTP statuses to answer the next requests with, one each, before answering normally."""
    delay_s: float = 0.0
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": 0, "owned_by": "sglang"}]}

        @app.post("/v1/chat/completions", response_model=None)
        async def chat(request: Request) -> JSONResponse | StreamingResponse:
            body = await request.json()
            self.requests += 1
            if self.fail_next:
                status = self.fail_next.pop(0)
                return JSONResponse({"object": "error", "message": "overloaded",
                                     "type": "server_error", "code": status},
                                    status_code=status)
            if body.get("model") != self.model:
                return JSONResponse({"object": "error", "message": f"model {body.get('model')}"
                                     " not found", "type": "invalid_request_error",
                                     "code": 404}, status_code=404)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                text = self.responder(body["messages"])
            finally:
                self.in_flight -= 1
            usage = {"prompt_tokens": sum(len(str(m["content"]).split())
                                          for m in body["messages"]),
                     "completion_tokens": len(text.split())}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            if body.get("stream"):
                return StreamingResponse(self._sse(text, usage), media_type="text/event-stream")
            return JSONResponse({
                "id": f"chatcmpl-{self.requests}", "object": "chat.completion",
                "created": int(time.time()), "model": self.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": usage})

        return app

    async def _sse(self, text: str, usage: dict[str, int]) -> Any:
        base = {"id": f"chatcmpl-{self.requests}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.model}
        for i, word in enumerate(text.split(" ")):
            delta = {"content": word if i == 0 else " " + word}
            yield "data: " + json.dumps({**base, "choices": [
                {"index": 0, "delta": delta, "finish_reason": None}]}) + "\n\n"
        yield "data: " + json.dumps({**base, "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
        yield "data: " + json.dumps({**base, "choices": [], "usage": usage}) + "\n\n"
        yield "data: [DONE]\n\n"
