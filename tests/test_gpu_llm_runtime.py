"""The LLM runtime through the `openai` client against an SGLang stand-in: chat, streaming,
retries, model ids, per-tenant concurrency, usage, durable batch jobs and the GPU mode."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.gpukit import director, gpu_hub, wait_job
from tests.standins.asgi import serve
from tests.standins.sglang import SglangStandIn

pytestmark = pytest.mark.anyio


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"VELOCITY_LLM_BASE_URL": url + "/v1", "VELOCITY_LLM_BACKOFF_S": "0.01",
            "VELOCITY_GPU_MODE": "split", **extra}


async def test_chat_stream_retries_model_ids_and_usage() -> None:
    standin = SglangStandIn()
    async with serve(standin.app()) as url, gpu_hub(_env(url)) as server:
        headers = await director(server)
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            r = await http.get("/api/runtime/llm/providers")
            assert r.json()[0]["models"] == ["qwen3.6-35b-a3b"] and r.json()[0]["available"]
            ask = {"messages": [{"role": "user", "content": "hello there"}]}
            r = await http.post("/api/runtime/llm/chat", json=ask)
            assert r.status_code == 200, r.text
            assert r.json()["content"] == "echo: hello there"
            assert r.json()["usage"] == {"prompt_tokens": 2, "completion_tokens": 3}
            # transient failures are retried with backoff
            standin.fail_next = [503, 502, 429]
            r = await http.post("/api/runtime/llm/chat", json=ask)
            assert r.status_code == 200 and r.json()["attempts"] == 4
            # beyond the retries (3): the GPU side is down, 502
            standin.fail_next = [503] * 4
            r = await http.post("/api/runtime/llm/chat", json=ask)
            assert r.status_code == 502 and r.json()["error"] == "gpu_unavailable"
            standin.fail_next = []
            # a refusal is not retried
            before = standin.requests
            r = await http.post("/api/runtime/llm/chat", json={**ask, "model": "other-model"})
            assert r.status_code == 400 and standin.requests == before + 1
            r = await http.post("/api/runtime/llm/chat", json={**ask, "model": "qwen:7b"})
            assert r.status_code == 400 and "tag" in r.json()["detail"]
            # streaming: server-sent deltas that join into the reply
            async with http.stream("POST", "/api/runtime/llm/chat",
                                   json={**ask, "stream": True}) as stream:
                events = [json.loads(line[6:]) async for line in stream.aiter_lines()
                          if line.startswith("data: {")]
            assert "".join(e["delta"] for e in events) == "echo: hello there"
        usage = await server.hub.db.pool.fetch(
            "SELECT purpose, prompt_tokens, completion_tokens, attempts FROM gpu_llm_usage "
            "WHERE tenant_id = 't1' ORDER BY created_at")
        assert [u["purpose"] for u in usage] == ["chat", "chat", "chat_stream"]
        assert usage[1]["attempts"] == 4 and usage[2]["completion_tokens"] == 3


async def test_per_tenant_concurrency_limit() -> None:
    standin = SglangStandIn(delay_s=0.15)
    async with serve(standin.app()) as url, gpu_hub(
            _env(url, VELOCITY_LLM_TENANT_CONCURRENCY="2")) as server:
        t1, t2 = await director(server, "t1"), await director(server, "t2")
        ask = {"messages": [{"role": "user", "content": "x"}]}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            replies = await asyncio.gather(*(
                http.post("/api/runtime/llm/chat", json=ask, headers=t1) for _ in range(6)))
            assert all(r.status_code == 200 for r in replies)
            assert standin.max_in_flight == 2  # one tenant never has more than 2 in flight
            standin.max_in_flight = 0
            replies = await asyncio.gather(*(
                http.post("/api/runtime/llm/chat", json=ask, headers=h)
                for h in (t1, t1, t1, t2, t2, t2)))
            assert all(r.status_code == 200 for r in replies)
            assert standin.max_in_flight == 4  # the other tenant is not held back


async def test_batch_job_is_durable_idempotent_and_waits_for_its_mode() -> None:
    standin = SglangStandIn()
    async with serve(standin.app()) as url, gpu_hub(_env(url)) as server:
        headers = await director(server)
        items = [{"messages": [{"role": "user", "content": f"item {i}"}]} for i in range(3)]
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            r = await http.post("/api/runtime/llm/batch", json={"items": items},
                                headers={"Idempotency-Key": "batch-1"})
            assert r.status_code == 202
            job_id = r.json()["id"]
            again = await http.post("/api/runtime/llm/batch", json={"items": items},
                                    headers={"Idempotency-Key": "batch-1"})
            assert again.json()["id"] == job_id
            job = await wait_job(http, headers, job_id, lambda j: j["status"] == "done",
                                 path="/api/runtime/llm/jobs/")
            assert job["progress"] == 1.0 and job["result"] == {"items": 3, "failed": 0}
            r = await http.get(f"/api/runtime/llm/jobs/{job_id}/results")
            results = r.json()["results"]
            assert [x["output"] for x in results] == [f"echo: item {i}" for i in range(3)]
            assert standin.requests == 3  # the repeated submission ran nothing twice
            # in media mode chat is refused (502) and a batch waits in the queue
            r = await http.post("/api/admin-surface/gpu-mode", json={"mode": "media",
                                                                     "wait_s": 5})
            assert r.json() == {"mode": "media", "previous": "split", "draining": False}
            r = await http.post("/api/runtime/llm/chat", json=items[0])
            assert r.status_code == 502 and "media mode" in r.json()["detail"]
            r = await http.post("/api/runtime/llm/batch", json={"items": items[:1]})
            waiting = r.json()["id"]
            await asyncio.sleep(0.5)
            r = await http.get(f"/api/runtime/llm/jobs/{waiting}")
            assert r.json()["status"] == "queued"
            queues = (await http.get("/api/admin-surface/queues")).json()
            assert queues["counts"]["llm_batch"] == {"done": 1, "queued": 1}
            assert queues["runnable"] == ["dream_weaver"] and queues["box"]["queued"] == 1
            await http.post("/api/admin-surface/gpu-mode", json={"mode": "llm"})
            await wait_job(http, headers, waiting, lambda j: j["status"] == "done")
            # another tenant cannot see the job
            other = await director(server, "t2")
            r = await http.get(f"/api/runtime/llm/jobs/{job_id}", headers=other)
            assert r.status_code == 404
