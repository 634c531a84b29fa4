"""Edge-first GPU jobs: GPU requests written on devices become durable GPU jobs on the hub, and
the jobs' progress and results are written back into the requests, which sync to the device.

Every hub runs a watcher; they may race on the same request and that is harmless. A request
becomes a job through the job store's idempotency key ``request:<request id>``, so however many
hubs see it, however often (a hub restarting between making the job and recording it), there is
one job. Outcomes are written through the hub's CRDT writer as the request watcher (the device
id `hub.policy.GPU_WORKER_DEVICE`, the only one the policy lets record an outcome); two hubs
writing the same outcome converge on it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import asyncpg

from core.errors import VelocityError
from core.identity import Principal, Role
from gpu_hub.errors import BadRequest
from gpu_hub.jobs import Job, JobKind, JobStatus
from gpu_hub.media.dream_weaver import DreamRequest, check_photo
from gpu_hub.oracle.question_job import OracleQuestion
from hub.policy import GPU_WORKER_DEVICE
from schema.models import GPU_REQUEST_ANSWER_CHARS, GpuRequestKind, GpuRequestStatus

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger(__name__)
COLLECTION = "gpu_requests"
BATCH = 50
PROGRESS_STEP = 0.05
"""Progress is written back when it moved at least this much (each write is a CRDT change)."""
_JOB_KINDS = {GpuRequestKind.ORACLE_QUESTION: JobKind.ORACLE_QUESTION,
              GpuRequestKind.DREAM_WEAVER: JobKind.DREAM_WEAVER}
_OUTCOMES = {JobStatus.DONE: GpuRequestStatus.DONE, JobStatus.FAILED: GpuRequestStatus.FAILED,
             JobStatus.CANCELLED: GpuRequestStatus.CANCELLED}


class GpuRequestWatcher:
    """Looks for new and unfinished requests every ``poll_s`` seconds."""

    def __init__(self, hub: Hub, *, poll_s: float = 0.5) -> None:
        self.hub, self.poll_s = hub, poll_s
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GpuRequestWatcher:
        self._task = asyncio.create_task(self._run(), name="velocity-gpu-requests")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # the database may blink; the next round tries again
                log.exception("GPU request round failed")
            await asyncio.sleep(self.poll_s)

    async def round(self) -> None:
        """Start every new request, bring every unfinished one up to its job, and cancel the
        jobs of withdrawn ones."""
        store = self.hub.storage.gpu_requests
        for row in await store.new(BATCH):
            await self._start(row)
        for row in await store.behind_their_job(PROGRESS_STEP, BATCH):
            job = await self.hub.gpu.jobs.get(row["tenant_id"], row["job"])
            await self._record(row, _outcome(job))
        for row in await store.withdrawn_jobs(BATCH):  # withdrawn on the device: job stops
            await self.hub.gpu.jobs.cancel(row["tenant_id"], row["id"])

    async def _start(self, row: asyncpg.Record) -> None:
        """Make the request's job (or find the one already made) and record it as queued;
        a request its owner may not run is recorded as refused."""
        try:
            user = await self.hub.accounts.caller(row["tenant_id"], row["owner_id"])
            job = await self._submit(user.principal, row)
        except VelocityError as exc:
            await self._record(row, {"status": GpuRequestStatus.REFUSED.value,
                                     "error": f"{exc.code}: {exc.message}"[:500],
                                     "photo": None, "finished_at": _now()})
            return
        await self._record(row, {**_outcome(job), "job_id": job.id, "photo": None})

    async def _submit(self, principal: Principal, row: asyncpg.Record) -> Job:
        front, kind = self.hub.gpu, GpuRequestKind(row["kind"])
        request: dict[str, Any]
        if kind is GpuRequestKind.ORACLE_QUESTION:
            request = OracleQuestion(question=row["question"], role=principal.role,
                                     team_id=principal.team_id).model_dump(mode="json")
        else:
            request = self._dream_request(principal, row).model_dump(mode="json")
        job, _ = await front.submit(principal, _JOB_KINDS[kind], request,
                                    idempotency_key=f"request:{row['id']}")
        return job

    def _dream_request(self, principal: Principal, row: asyncpg.Record) -> DreamRequest:
        """The photo stored as an upload (one file per request, the same on every hub)."""
        upload = f"uploads/{principal.tenant_id}/request-{row['id']}.img"
        path = self.hub.gpu.settings.asset_dir / upload
        if row["photo"]:
            try:
                photo = base64.b64decode(row["photo"], validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("the photo is not base64", code="bad_image") from None
            check_photo(photo, self.hub.gpu.settings.dream_weaver_max_bytes)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(photo)
        return DreamRequest(room_type=row["room_type"], style=row["style"], upload=upload,
                            role=principal.role)

    async def _record(self, row: asyncpg.Record, values: dict[str, Any]) -> None:
        worker = Principal(row["tenant_id"], "hub", Role.ADMIN, device_id=GPU_WORKER_DEVICE)
        try:
            await self.hub.writer.write(worker, COLLECTION, row["id"], values, create=False)
        except VelocityError as exc:
            log.warning("GPU request %s: outcome not recorded: %s", row["id"], exc)


def _outcome(job: Job) -> dict[str, Any]:
    """What the request should show of its job."""
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return {"status": job.status.value, "progress": round(job.progress, 3)}
    values: dict[str, Any] = {"status": _OUTCOMES[job.status].value, "progress": job.progress,
                              "finished_at": (job.finished_at or datetime.now(UTC)).isoformat()}
    if job.status is not JobStatus.DONE:
        values["error"] = (job.error or job.status.value)[:500]
    result = job.result or {}
    if job.status is JobStatus.DONE and "refused" in result:
        values |= {"status": GpuRequestStatus.REFUSED.value, "error": str(result["refused"])[:500]}
    elif job.status is JobStatus.DONE and job.kind is JobKind.ORACLE_QUESTION:
        values["answer"] = _answer_text(result)
    elif job.status is JobStatus.DONE:
        values["result_url"] = f"/api/dream-weaver/result/{job.id}"
    return values


def _answer_text(answer: dict[str, Any]) -> str:
    """The answer as JSON within the field's limit: rows are dropped from the end (and
    ``rows_kept`` says how many stayed) when all of them do not fit."""
    rows = list(answer.get("rows", []))
    while True:
        text = json.dumps({**answer, "rows": rows, "rows_kept": len(rows)},
                          separators=(",", ":"))
        if len(text) <= GPU_REQUEST_ANSWER_CHARS:
            return text
        if not rows:  # a huge SQL text or column list: keep what says what ran
            return json.dumps({"question": str(answer.get("question", ""))[:2000],
                               "sql": str(answer.get("sql", ""))[:20_000], "rows": [],
                               "rows_kept": 0}, separators=(",", ":"))
        rows = rows[: len(rows) * 3 // 4]


def _now() -> str:
    return datetime.now(UTC).isoformat()
