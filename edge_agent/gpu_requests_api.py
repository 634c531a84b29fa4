"""GPU requests on the device's local API: ask for an Oracle answer or a Dream Weaver staging
render offline; follow status and progress; read the answer.

A request is a record of the ``gpu_requests`` collection written into the replica (durable at
once, pushed on reconnect). The hub turns it into a GPU job when it arrives and writes the job's
status, progress and result back into the record, which syncs back here.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field

from core.errors import FieldTooLarge, NotFound, RecordInvalid
from edge_agent.service import EdgeAgent
from schema.models import GPU_REQUEST_PHOTO_CHARS, GpuRequestKind, RoomType

COLLECTION = "gpu_requests"
PREFIX = "/api/gpu/requests"
PHOTO_MAX_BYTES = GPU_REQUEST_PHOTO_CHARS * 3 // 4
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_LIST = ("id, kind, status, progress, question, room_type, style, job_id, result_url, error, "
         "requested_at, finished_at")


class BadImage(RecordInvalid):
    code = "bad_image"


class OracleAsk(BaseModel):
    question: str = Field(min_length=1, max_length=2000)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A request as the device shows it: the photo left out, the answer as JSON."""
    out = {k: v for k, v in record.items() if k != "photo"}
    if out.get("answer"):
        out["answer"] = json.loads(out["answer"])
    return out


def gpu_requests_router(agent: EdgeAgent) -> APIRouter:
    """The routes (the caller adds the local-token check)."""
    router = APIRouter(prefix=PREFIX, tags=["gpu"])

    async def make(values: dict[str, Any]) -> dict[str, Any]:
        record = await agent.write(COLLECTION, None, {
            **values, "requested_at": datetime.now(UTC).isoformat()})
        return _public(record.model_dump(mode="json"))

    @router.post("/oracle", status_code=201)
    async def ask_oracle(body: OracleAsk) -> dict[str, Any]:
        """Ask the Oracle; the answer arrives in this request once the hub ran it."""
        return await make({"kind": GpuRequestKind.ORACLE_QUESTION.value,
                           "question": body.question})

    @router.post("/dream-weaver", status_code=201)
    async def ask_render(
        image: Annotated[UploadFile, File(description="The room photo (PNG or JPEG)")],
        room_type: Annotated[RoomType, Form()],
        style: Annotated[str, Form(min_length=1, max_length=300)],
    ) -> dict[str, Any]:
        """Ask for a staging render of a room photo (at most about 187 KB: downscale first)."""
        data = await image.read(PHOTO_MAX_BYTES + 1)
        if len(data) > PHOTO_MAX_BYTES:
            raise FieldTooLarge(f"the photo is over {PHOTO_MAX_BYTES} bytes; send a smaller "
                                "JPEG (about 1024 pixels wide)")
        if not data.startswith(IMAGE_MAGIC):
            raise BadImage("the photo must be a PNG or JPEG image")
        return await make({"kind": GpuRequestKind.DREAM_WEAVER.value,
                           "room_type": room_type.value, "style": style,
                           "photo": base64.b64encode(data).decode()})

    @router.get("")
    async def list_requests(status: Annotated[str | None, Query(max_length=20)] = None,
                            limit: Annotated[int, Query(ge=1, le=200)] = 50,
                            offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        return await agent.replica.query(
            f"SELECT {_LIST} FROM temp.intel_gpu_requests WHERE NOT deleted AND "
            "(? IS NULL OR status = ?) ORDER BY requested_at DESC, id LIMIT ? OFFSET ?",
            (status, status, limit, offset))

    @router.get("/{request_id}")
    async def get_request(request_id: str) -> dict[str, Any]:
        record = agent.replica.record(COLLECTION, request_id)
        if record.deleted:
            raise NotFound(f"no GPU request {request_id} on this device")
        return _public(record.model_dump(mode="json"))

    @router.delete("/{request_id}")
    async def withdraw(request_id: str) -> dict[str, Any]:
        """Withdraw a request; the hub cancels its job if it has one."""
        await get_request(request_id)
        record = await agent.write(COLLECTION, request_id, {"deleted": True})
        return _public(record.model_dump(mode="json"))

    return router
