"""`/api/dream-weaver`: upload a room photo, follow the render's progress, fetch the PNG."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, UploadFile
from fastapi.responses import FileResponse

from core.errors import Conflict
from core.ids import new_id
from gpu_hub.api.deps import FrontDep, PrincipalDep
from gpu_hub.errors import BadRequest
from gpu_hub.jobs import JobKind, JobStatus
from gpu_hub.media.comfy import no_workers
from gpu_hub.media.dream_weaver import ROOM_TYPES, DreamRequest, check_photo, result_path
from gpu_hub.mode import RUNS

router = APIRouter(prefix="/api/dream-weaver", tags=["dream-weaver"])


@router.post("", status_code=202)
async def submit(
    caller: PrincipalDep, front: FrontDep,
    image: Annotated[UploadFile, File(description="The room photo (PNG or JPEG)")],
    room_type: Annotated[str, Form()],
    style: Annotated[str, Form(max_length=300)],
    seed: Annotated[int, Form(ge=0, lt=2**32)] = 0,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Queue a staging render; the same ``Idempotency-Key`` returns the same job."""
    if room_type not in ROOM_TYPES:
        raise BadRequest(f"room_type must be one of {', '.join(ROOM_TYPES)}", code="room_type")
    limit = front.settings.dream_weaver_max_bytes
    data = await image.read(limit + 1)
    check_photo(data, limit)
    state = await front.mode.state()
    if JobKind.DREAM_WEAVER in RUNS[state.mode] and not front.comfy.healthy():
        await front.comfy.check_all()  # the last check may be stale: look again before a 502
        if not front.comfy.healthy():
            raise no_workers()
    upload = f"uploads/{caller.tenant_id}/{new_id()}.img"
    path = front.settings.asset_dir / upload
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    request = DreamRequest(room_type=room_type, style=style, upload=upload, role=caller.role,
                           seed=seed)
    job, created = await front.submit(caller, JobKind.DREAM_WEAVER,
                                      request.model_dump(mode="json"), idempotency_key)
    if not created:
        path.unlink(missing_ok=True)
    return job.public()


@router.get("/status/{job_id}")
async def status(job_id: str, caller: PrincipalDep, front: FrontDep) -> dict[str, Any]:
    return (await front.own_job(caller, job_id, JobKind.DREAM_WEAVER)).public()


@router.get("/result/{job_id}", response_class=FileResponse)
async def result(job_id: str, caller: PrincipalDep, front: FrontDep) -> FileResponse:
    job = await front.own_job(caller, job_id, JobKind.DREAM_WEAVER)
    if job.status is not JobStatus.DONE:
        raise Conflict(f"job {job_id} is {job.status.value} ({job.progress:.0%}); poll "
                       f"/api/dream-weaver/status/{job_id}", code="not_ready")
    return FileResponse(result_path(front.settings.asset_dir, job), media_type="image/png",
                        filename=f"dream-weaver-{job_id}.png")
