"""Benchmark of the GPU front: what the hub adds to a GPU job, jobs/s through the ComfyUI pool,
and the Oracle verifier's cost per query.

Run: ``.venv/bin/python bench/gpu_front.py [--jobs 40] [--workers 4] [--rounds 20]``.

ComfyUI stand-ins (the ones the tests use, speaking ComfyUI's HTTP and websocket API) answer at
once (one progress step, no sleep), so what is measured is the front, not a GPU. Side by side in
one run: the same render (upload, `/prompt`, websocket progress, `/history`, `/view`) driven
straight from the pool's client, and through the hub (`POST /api/dream-weaver` → durable job in
PostgreSQL → claimed by the runner → worker → PNG stored → status polled every 5 ms → result
fetched); the difference is the hub's overhead per job. Then ``--jobs`` renders submitted at
once over ``--workers`` stand-ins, open jobs listed every 20 ms until none is left (jobs/s).
Then the verifier over the test corpora (analytics and hostile queries) beside sqlglot's parse
alone. The hub, its PostgreSQL (``DATABASE_URL`` or a private one) and the stand-ins share this
process and machine. Writes bench/results/gpu_front.*.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import sqlglot
from rich.console import Console
from rich.progress import Progress

from bench._common import percentile, write_results
from core.identity import Role
from gpu_hub.errors import QueryRefused
from gpu_hub.media.comfy import ComfyWorker
from gpu_hub.media.dream_weaver import template_prompt, workflow
from gpu_hub.oracle.verifier import verify
from hub.database import stop_embedded_postgres
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from tests.oracle_corpus import HOSTILE, LEGITIMATE
from tests.pg import fresh_database
from tests.standins.asgi import serve_comfy
from tests.standins.comfyui import ComfyStandIn, tiny_png

PHOTO = tiny_png(90)
FORM = {"room_type": "bedroom", "style": "calm japandi, linen, oak"}
PASSWORD = "bench-password-1"


async def _direct(url: str, rounds: int, progress: Progress) -> list[float]:
    worker = ComfyWorker(url)
    task = progress.add_task("direct to ComfyUI", total=rounds)
    samples = []

    async def ignore(_fraction: float) -> None:
        return None

    try:
        for _ in range(rounds):
            start = time.perf_counter()
            name = await worker.upload_image(PHOTO, "bench.png")
            await worker.run(workflow(name, template_prompt("bedroom", "calm"), 0, "x"),
                             stall_s=30, progress=ignore)
            samples.append(time.perf_counter() - start)
            progress.advance(task)
    finally:
        await worker.aclose()
    return samples


async def _submit(http: httpx.AsyncClient) -> str:
    r = await http.post("/api/dream-weaver", data=FORM,
                        files={"image": ("room.png", PHOTO, "image/png")})
    r.raise_for_status()
    job_id: str = r.json()["id"]
    return job_id


async def _through_hub(http: httpx.AsyncClient) -> float:
    start = time.perf_counter()
    job_id = await _submit(http)
    while True:
        status = (await http.get(f"/api/dream-weaver/status/{job_id}")).json()["status"]
        if status == "done":
            break
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"bench job {job_id} {status}")
        await asyncio.sleep(0.005)
    (await http.get(f"/api/dream-weaver/result/{job_id}")).raise_for_status()
    return time.perf_counter() - start


def _verifier(rounds: int) -> dict[str, float]:
    def per_query(fn: object, queries: list[str]) -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            for q in queries:
                with contextlib.suppress(QueryRefused, sqlglot.errors.SqlglotError):
                    fn(q)  # type: ignore[operator]
        return (time.perf_counter() - start) / (rounds * len(queries)) * 1e6

    return {
        "legit_verify_us": per_query(lambda q: verify(q, max_rows=500), LEGITIMATE),
        "legit_parse_us": per_query(lambda q: sqlglot.parse(q, read="postgres"), LEGITIMATE),
        "hostile_verify_us": per_query(lambda q: verify(q, max_rows=500), HOSTILE),
    }


async def run(jobs: int, workers: int, rounds: int, console: Console) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="velocity-bench-gpu-"))
    standins = [ComfyStandIn(f"gpu{i}", steps=1, step_s=0.0) for i in range(workers)]
    figures: dict[str, float] = {}
    try:
        async with AsyncExitStack() as stack:
            urls = [await stack.enter_async_context(serve_comfy(s)) for s in standins]
            os.environ.update({"COMFYUI_URLS": ",".join(urls), "VELOCITY_GPU_MODE": "media",
                               "VELOCITY_ASSET_DIR": str(folder / "assets"),
                               "VELOCITY_DREAM_WEAVER_SLOTS": str(workers)})
            url = await fresh_database() if os.environ.get("DATABASE_URL") else None
            hub = Hub(HubSettings(database_url=url, data_dir=folder / "hub"))
            server = await stack.enter_async_context(HubServer(hub, port=0))
            await hub.accounts.ensure_tenant("bench", "Bench")
            await hub.accounts.create_user("bench", "director@bench.test", PASSWORD,
                                           Role.SALES_DIRECTOR, "Director")
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url,
                                                                     timeout=60))
            r = await http.post("/api/auth/login", json={"email": "director@bench.test",
                                                         "password": PASSWORD})
            http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            with Progress(console=console) as progress:
                direct = await _direct(urls[0], rounds, progress)
                task = progress.add_task("through the hub", total=rounds)
                hubbed = []
                for _ in range(rounds):
                    hubbed.append(await _through_hub(http))
                    progress.advance(task)
                task = progress.add_task(f"{jobs} jobs over {workers} workers", total=jobs)
                start = time.perf_counter()
                ids = set(await asyncio.gather(*(_submit(http) for _ in range(jobs))))
                while True:
                    listed = (await http.get("/api/runtime/jobs", params={"open_only": True}))
                    still = {j["id"] for j in listed.json()} & ids
                    progress.update(task, completed=jobs - len(still))
                    if not still:
                        break
                    await asyncio.sleep(0.02)
                elapsed = time.perf_counter() - start
        figures = {
            "direct_median_ms": statistics.median(direct) * 1e3,
            "direct_p90_ms": percentile(direct, 0.9) * 1e3,
            "hub_median_ms": statistics.median(hubbed) * 1e3,
            "hub_p90_ms": percentile(hubbed, 0.9) * 1e3,
            "jobs_per_s": jobs / elapsed, "jobs": jobs, "workers": workers,
            "spread": max(len(s.prompts) for s in standins) - min(len(s.prompts)
                                                                   for s in standins),
        }
        figures["overhead_ms"] = figures["hub_median_ms"] - figures["direct_median_ms"]
        figures.update(_verifier(max(3, rounds // 4)))
        return figures
    finally:
        stop_embedded_postgres(folder / "hub" / "pg")
        shutil.rmtree(folder, ignore_errors=True)


def markdown(f: dict[str, float]) -> str:
    return "\n".join([
        "| path | median ms / job | p90 ms | vs direct |",
        "| --- | --- | --- | --- |",
        f"| direct to a ComfyUI stand-in (upload, prompt, ws progress, history, view) | "
        f"{f['direct_median_ms']:.1f} | {f['direct_p90_ms']:.1f} | 1.00× |",
        f"| through the hub (submit, durable job, runner, worker, stored PNG, poll, fetch) | "
        f"{f['hub_median_ms']:.1f} | {f['hub_p90_ms']:.1f} | "
        f"{f['hub_median_ms'] / f['direct_median_ms']:.2f}× |",
        "",
        f"Hub overhead per job: **{f['overhead_ms']:.1f} ms** (median). "
        f"Pool throughput: **{f['jobs_per_s']:.1f} jobs/s** ({f['jobs']:.0f} jobs submitted "
        f"at once over {f['workers']:.0f} workers; most minus fewest jobs on one worker: "
        f"{f['spread']:.0f}).",
        "",
        "| Oracle verifier | µs / query | vs parse alone |",
        "| --- | --- | --- |",
        f"| sqlglot parse alone, analytics corpus | {f['legit_parse_us']:.0f} | 1.00× |",
        f"| verify (parse, walk, checks, LIMIT, render), analytics corpus | "
        f"{f['legit_verify_us']:.0f} | {f['legit_verify_us'] / f['legit_parse_us']:.2f}× |",
        f"| verify, hostile corpus (refused) | {f['hostile_verify_us']:.0f} | |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    console = Console()
    figures = asyncio.run(run(args.jobs, args.workers, args.rounds, console))
    text = markdown(figures)
    path = write_results("gpu_front", figures, text)
    console.print(text)
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
