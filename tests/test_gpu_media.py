"""Dream Weaver through the ComfyUI worker pool, against ComfyUI stand-ins speaking its HTTP
and websocket API: progress, stored PNG results, idempotent submission, a hung worker and a dead
worker with the job retried elsewhere, cancellation, limits, and GPU mode draining."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from hub.server import free_port
from tests.gpukit import director, gpu_hub, wait_job
from tests.hubkit import login
from tests.standins.asgi import serve, serve_comfy
from tests.standins.comfyui import ComfyStandIn, tiny_png
from tests.standins.sglang import SglangStandIn

pytestmark = pytest.mark.anyio
PHOTO = tiny_png(90)
FORM = {"room_type": "living_room", "style": "warm minimalist, oak and linen"}


def _env(comfy_urls: list[str], assets: Path, **extra: str) -> dict[str, str]:
    return {"COMFYUI_URLS": ",".join(comfy_urls), "VELOCITY_ASSET_DIR": str(assets),
            "VELOCITY_COMFY_TIMEOUT_S": "1.0", "VELOCITY_COMFY_HEALTH_INTERVAL_S": "0.2",
            "VELOCITY_GPU_MODE": "media", **extra}


async def _submit(http: httpx.AsyncClient, key: str | None = None,
                  photo: bytes = PHOTO) -> httpx.Response:
    """POST a render (the response is returned whatever its status)."""
    headers = {"Idempotency-Key": key} if key else {}
    return await http.post("/api/dream-weaver", data=FORM, headers=headers,
                           files={"image": ("room.png", photo, "image/png")})


async def test_render_with_progress_expansion_idempotency_and_limits(tmp_path: Path) -> None:
    llm = SglangStandIn(responder=lambda m: "a serene oak-and-linen living room, golden hour")
    workers = [ComfyStandIn("gpu0"), ComfyStandIn("gpu1")]
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(serve(llm.app()))
        urls = [await stack.enter_async_context(serve_comfy(w)) for w in workers]
        server = await stack.enter_async_context(gpu_hub(_env(
            urls, tmp_path, VELOCITY_GPU_MODE="split", VELOCITY_LLM_BASE_URL=llm_url + "/v1",
            VELOCITY_DREAM_WEAVER_MAX_BYTES="4096")))
        headers = await director(server)
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30))
        r = await _submit(http, key="visit-42")
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert (await _submit(http, key="visit-42")).json()["id"] == job_id
        job = await wait_job(http, headers, job_id, lambda j: j["status"] == "done",
                             path="/api/dream-weaver/status/")
        assert job["result"]["prompt_expanded"] and "golden hour" in job["result"]["prompt"]
        assert sum(len(w.prompts) for w in workers) == 1  # same key, one render
        r = await http.get(f"/api/dream-weaver/result/{job_id}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content.startswith(b"\x89PNG") and r.content in {
            png for w in workers for png in w.outputs.values()}
        assert (tmp_path / "dream_weaver" / "t1" / f"{job_id}.png").read_bytes() == r.content
        graph = next(w.prompts[0] for w in workers if w.prompts)
        assert graph["2"]["inputs"]["image"] in {n for w in workers for n in w.uploads}
        # least-loaded routing: two more renders go one to each worker
        ids = [(await _submit(http)).json()["id"] for _ in range(2)]
        for other in ids:
            await wait_job(http, headers, other, lambda j: j["status"] == "done")
        assert sorted(len(w.prompts) for w in workers) == [1, 2]
        # limits: 413 over the size, 400 for a non-image, 400 for an unknown room
        assert (await _submit(http, photo=b"\x89PNG\r\n\x1a\n" + b"0" * 5000)).status_code \
            == 413
        assert (await _submit(http, photo=b"GIF89a....")).status_code == 400
        r = await http.post("/api/dream-weaver", data={**FORM, "room_type": "dungeon"},
                            files={"image": ("room.png", PHOTO, "image/png")})
        assert r.status_code == 400
        # another tenant, or another broker, cannot see the result
        for other in (await director(server, "t2"), await login(server, "junior_broker@t1.test")):
            r = await http.get(f"/api/dream-weaver/result/{job_id}", headers=other)
            assert r.status_code == 404


async def test_gpu_side_down_is_a_502(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with gpu_hub(_env([dead], tmp_path)) as server:
        headers = await director(server)
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
            r = await _submit(http)
            assert r.status_code == 502 and r.json()["error"] == "gpu_unavailable"
            queues = (await http.get("/api/admin-surface/queues")).json()
            assert queues["workers"][0]["healthy"] is False


async def test_hung_worker_is_detected_and_the_job_runs_elsewhere(tmp_path: Path) -> None:
    workers = [ComfyStandIn("gpu0", hang=True), ComfyStandIn("gpu1", hang=True)]
    async with AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serve_comfy(w)) for w in workers]
        server = await stack.enter_async_context(gpu_hub(_env(urls, tmp_path)))
        headers = await director(server)
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30))
        job_id = (await _submit(http)).json()["id"]
        while not any(w.prompts for w in workers):
            await asyncio.sleep(0.02)
        hung = next(w for w in workers if w.prompts)
        healthy = next(w for w in workers if w is not hung)
        healthy.hang = False
        job = await wait_job(http, headers, job_id, lambda j: j["status"] == "done")
        assert job["attempts"] == 2 and len(healthy.prompts) == 1
        assert hung.interrupted  # the hung prompt was interrupted on its worker


async def test_dead_worker_mid_job_and_cancellation(tmp_path: Path) -> None:
    workers = [ComfyStandIn("gpu0", steps=200, step_s=0.02),
               ComfyStandIn("gpu1", steps=200, step_s=0.02)]
    async with AsyncExitStack() as stack:
        lifetimes = [AsyncExitStack() for _ in workers]
        urls = [await life.enter_async_context(serve_comfy(w))
                for life, w in zip(lifetimes, workers, strict=True)]
        server = await stack.enter_async_context(gpu_hub(_env(urls, tmp_path)))
        headers = await director(server)
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30))
        job_id = (await _submit(http)).json()["id"]
        await wait_job(http, headers, job_id, lambda j: j["progress"] > 0.1)
        victim = next(i for i, w in enumerate(workers) if w.prompts)
        survivor = workers[1 - victim]
        survivor.steps = 3
        await lifetimes[victim].aclose()  # the worker process dies mid-render
        job = await wait_job(http, headers, job_id, lambda j: j["status"] == "done")
        assert job["attempts"] == 2 and len(survivor.prompts) == 1
        assert job["result"]["worker"] == urls[1 - victim]
        # cancellation of a running render stops it on the worker (interrupted when running,
        # deleted from the worker's queue when still waiting there)
        survivor.steps = 2000  # 40 s: it cannot end by itself while the test waits
        job_id = (await _submit(http)).json()["id"]
        await wait_job(http, headers, job_id, lambda j: j["progress"] > 0.05)
        r = await http.post(f"/api/runtime/jobs/{job_id}/cancel")
        assert r.json()["cancel_requested"] is True
        job = await wait_job(http, headers, job_id, lambda j: j["status"] == "cancelled")
        for _ in range(500):
            if survivor.running is None and not survivor.pending:
                break
            await asyncio.sleep(0.02)
        assert survivor.running is None and not survivor.pending
        await lifetimes[1 - victim].aclose()


async def test_mode_switch_drains_or_cancels(tmp_path: Path) -> None:
    llm = SglangStandIn()
    worker = ComfyStandIn("gpu0", steps=30, step_s=0.03)
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(serve(llm.app()))
        url = await stack.enter_async_context(serve_comfy(worker))
        server = await stack.enter_async_context(gpu_hub(_env(
            [url], tmp_path, VELOCITY_LLM_BASE_URL=llm_url + "/v1")))
        headers = await director(server)
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30))
        render = (await _submit(http)).json()["id"]
        batch = (await http.post("/api/runtime/llm/batch", json={"items": [
            {"messages": [{"role": "user", "content": "hi"}]}]})).json()["id"]
        await wait_job(http, headers, render, lambda j: j["status"] == "running")
        # to llm, draining: the render finishes first, the batch only runs after it
        r = await http.post("/api/admin-surface/gpu-mode", json={"mode": "llm"})
        assert r.json()["draining"] is True
        assert (await http.get(f"/api/runtime/jobs/{batch}")).json()["status"] == "queued"
        done = await wait_job(http, headers, render, lambda j: j["status"] == "done")
        finished = await wait_job(http, headers, batch, lambda j: j["status"] == "done")
        assert finished["started_at"] >= done["finished_at"]
        assert (await http.get("/api/admin-surface/gpu-mode")).json()["draining"] is False
        # a render asked for in llm mode waits; back to media it runs; to llm with
        # cancel_running the running render is cancelled
        waiting = (await _submit(http)).json()["id"]
        await asyncio.sleep(0.4)
        assert (await http.get(f"/api/runtime/jobs/{waiting}")).json()["status"] == "queued"
        await http.post("/api/admin-surface/gpu-mode", json={"mode": "media"})
        worker.steps = 400
        await wait_job(http, headers, waiting, lambda j: j["status"] == "running")
        r = await http.post("/api/admin-surface/gpu-mode", json={
            "mode": "llm", "cancel_running": True, "wait_s": 10})
        assert {k: r.json()[k] for k in ("mode", "previous")} == {"mode": "llm",
                                                                   "previous": "media"}
        for _ in range(300):  # within wait_s on a quiet machine; a loaded one may take longer
            if not (await http.get("/api/admin-surface/gpu-mode")).json()["draining"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the switch with cancel_running never ended its drain")
        job = (await http.get(f"/api/runtime/jobs/{waiting}")).json()
        assert job["status"] == "cancelled"
