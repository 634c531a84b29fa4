"""Helpers for GPU front tests: a hub wired to SGLang and ComfyUI stand-ins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from hub.server import HubServer
from tests.hubkit import login, running_hub


@asynccontextmanager
async def gpu_hub(env: dict[str, str]) -> AsyncIterator[HubServer]:
    """A hub (tenants t1, t2) whose GPU front reads ``env`` (VELOCITY_…/COMFYUI_URLS)."""
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    try:
        async with running_hub() as server:
            yield server
    finally:
        mp.undo()


async def director(server: HubServer, tenant: str = "t1") -> dict[str, str]:
    return await login(server, f"sales_director@{tenant}.test")


async def wait_job(http: httpx.AsyncClient, headers: dict[str, str], job_id: str,
                   until: Callable[[dict[str, Any]], bool], timeout: float = 60.0,
                   path: str = "/api/runtime/jobs/") -> dict[str, Any]:
    """Poll a job's status until ``until(job)`` holds; returns the job and every progress seen
    under ``job['_seen']``."""
    seen: list[float] = []

    async def poll() -> dict[str, Any]:
        while True:
            r = await http.get(f"{path}{job_id}", headers=headers)
            r.raise_for_status()
            job: dict[str, Any] = r.json()
            seen.append(job["progress"])
            if until(job):
                job["_seen"] = seen
                return job
            await asyncio.sleep(0.03)

    return await asyncio.wait_for(poll(), timeout)
