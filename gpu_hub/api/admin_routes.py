"""`/api/admin-surface/queues` and the GPU mode: what waits, what runs, what the box runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from gpu_hub.api.deps import FrontDep, ManagerDep
from gpu_hub.mode import GpuMode

router = APIRouter(prefix="/api/admin-surface", tags=["admin"])


class ModeSwitch(BaseModel):
    mode: GpuMode
    cancel_running: bool = False
    """Cancel running jobs the new mode cannot run instead of waiting for them."""
    wait_s: float = 0.0
    """How long the request waits for the drain (it continues in the background anyway)."""


@router.get("/queues")
async def queues(caller: ManagerDep, front: FrontDep) -> dict[str, Any]:
    """The tenant's jobs by kind and status and its open jobs, the GPU box's load, the mode
    and the ComfyUI workers."""
    state = await front.mode.state()
    open_jobs = await front.jobs.list(caller.tenant_id, open_only=True)
    return {"mode": state.model_dump(mode="json"),
            "runnable": sorted(k.value for k in state.runnable),
            "counts": await front.jobs.counts(caller.tenant_id),
            "box": await front.jobs.box_load(),
            "open": [j.public() for j in open_jobs],
            "workers": await front.worker_health()}


@router.get("/gpu-mode")
async def gpu_mode(caller: ManagerDep, front: FrontDep) -> dict[str, Any]:
    return (await front.mode.state()).model_dump(mode="json")


@router.post("/gpu-mode")
async def switch_gpu_mode(body: ModeSwitch, caller: ManagerDep,
                          front: FrontDep) -> dict[str, Any]:
    state = await front.mode.switch(body.mode, cancel_running=body.cancel_running,
                                    wait_s=min(body.wait_s, 300))
    front.runner.wake()
    return state.model_dump(mode="json")
