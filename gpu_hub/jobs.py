"""Durable GPU jobs in PostgreSQL: submitted once per idempotency key, claimed by any hub with
a lease, their progress and results visible to every hub."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
from pydantic import BaseModel

from core.errors import NotFound
from core.identity import Principal
from core.ids import new_id


class JobKind(StrEnum):
    LLM_BATCH = "llm_batch"
    DREAM_WEAVER = "dream_weaver"
    ORACLE_QUESTION = "oracle_question"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(BaseModel):
    tenant_id: str
    id: str
    kind: JobKind
    user_id: str
    idempotency_key: str | None
    status: JobStatus
    progress: float
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    worker: str | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def public(self) -> dict[str, Any]:
        """What a requester sees (the request's bulky parts are left out)."""
        return self.model_dump(mode="json", exclude={"request", "tenant_id"})


def _job(row: asyncpg.Record) -> Job:
    return Job(**{k: row[k] for k in Job.model_fields})


class JobStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def submit(self, principal: Principal, kind: JobKind, request: dict[str, Any],
                     idempotency_key: str | None = None) -> tuple[Job, bool]:
        """The job for ``idempotency_key`` (made now when new); True when it was created."""
        row = await self.pool.fetchrow(
            "INSERT INTO gpu_jobs (tenant_id, id, kind, user_id, idempotency_key, request) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, kind, idempotency_key) "
            "WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *",
            principal.tenant_id, new_id(), kind.value, principal.user_id, idempotency_key,
            request)
        if row is not None:
            return _job(row), True
        row = await self.pool.fetchrow(
            "SELECT * FROM gpu_jobs WHERE tenant_id = $1 AND kind = $2 AND idempotency_key = $3",
            principal.tenant_id, kind.value, idempotency_key)
        return _job(row), False

    async def get(self, tenant_id: str, job_id: str) -> Job:
        row = await self.pool.fetchrow(
            "SELECT * FROM gpu_jobs WHERE tenant_id = $1 AND id = $2", tenant_id, job_id)
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _job(row)

    async def list(self, tenant_id: str | None, *, open_only: bool = False,
                   limit: int = 100) -> list[Job]:
        rows = await self.pool.fetch(
            "SELECT * FROM gpu_jobs WHERE ($1::text IS NULL OR tenant_id = $1) AND "
            "(NOT $2 OR status IN ('queued', 'running')) ORDER BY created_at DESC LIMIT $3",
            tenant_id, open_only, limit)
        return [_job(r) for r in rows]

    async def counts(self, tenant_id: str) -> dict[str, dict[str, int]]:
        """A tenant's jobs per kind and status, for the admin surface."""
        out: dict[str, dict[str, int]] = {k.value: {} for k in JobKind}
        for r in await self.pool.fetch(
                "SELECT kind, status, count(*) AS n FROM gpu_jobs WHERE tenant_id = $1 "
                "GROUP BY kind, status", tenant_id):
            out.setdefault(r["kind"], {})[r["status"]] = r["n"]
        return out

    async def box_load(self) -> dict[str, int]:
        """Open jobs on the shared GPU box, all tenants together (no tenant is named)."""
        rows = await self.pool.fetch(
            "SELECT status, count(*) AS n FROM gpu_jobs WHERE status IN ('queued', 'running') "
            "GROUP BY status")
        return {"queued": 0, "running": 0} | {r["status"]: r["n"] for r in rows}

    async def claim(self, kinds: list[JobKind], worker: str, lease_s: float) -> Job | None:
        """The oldest queued job of ``kinds``, now running under a lease held by ``worker``."""
        row = await self.pool.fetchrow(
            "UPDATE gpu_jobs j SET status = 'running', attempts = attempts + 1, worker = $2, "
            "lease_until = now() + make_interval(secs => $3), "
            "started_at = coalesce(started_at, now()) "
            "FROM (SELECT tenant_id, id FROM gpu_jobs WHERE status = 'queued' "
            "AND kind = ANY($1::text[]) ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1) c "
            "WHERE j.tenant_id = c.tenant_id AND j.id = c.id RETURNING j.*",
            [k.value for k in kinds], worker, lease_s)
        return _job(row) if row is not None else None

    async def heartbeat(self, job: Job, lease_s: float, progress: float | None = None) -> bool:
        """Extend the lease (and record progress); False when the job was cancelled."""
        cancel = await self.pool.fetchval(
            "UPDATE gpu_jobs SET lease_until = now() + make_interval(secs => $3), "
            "progress = coalesce($4, progress) WHERE tenant_id = $1 AND id = $2 "
            "RETURNING cancel_requested", job.tenant_id, job.id, lease_s, progress)
        return not cancel

    async def finish(self, job: Job, status: JobStatus, *, result: dict[str, Any] | None = None,
                     error: str | None = None) -> None:
        await self.pool.execute(
            "UPDATE gpu_jobs SET status = $3, result = $4, error = $5, lease_until = NULL, "
            "progress = CASE WHEN $3 = 'done' THEN 1 ELSE progress END, finished_at = now() "
            "WHERE tenant_id = $1 AND id = $2", job.tenant_id, job.id, status.value, result,
            error)

    async def requeue(self, job: Job, error: str) -> None:
        """Back to the queue (for another worker), keeping the reason it left the last one."""
        await self.pool.execute(
            "UPDATE gpu_jobs SET status = 'queued', worker = NULL, lease_until = NULL, "
            "error = $3 WHERE tenant_id = $1 AND id = $2", job.tenant_id, job.id, error)

    async def cancel(self, tenant_id: str, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one is asked to stop."""
        row = await self.pool.fetchrow(
            "UPDATE gpu_jobs SET cancel_requested = status IN ('queued', 'running'), "
            "status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END, "
            "finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END "
            "WHERE tenant_id = $1 AND id = $2 RETURNING *", tenant_id, job_id)
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _job(row)

    async def recover_expired(self) -> int:
        """Requeue running jobs whose hub stopped renewing their lease."""
        result: str = await self.pool.execute(
            "UPDATE gpu_jobs SET status = 'queued', worker = NULL, lease_until = NULL, "
            "error = 'the hub running it stopped' WHERE status = 'running' "
            "AND lease_until < now()")
        return int(result.split()[-1])

    async def running(self, kinds: list[JobKind]) -> int:
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM gpu_jobs WHERE status = 'running' AND kind = ANY($1::text[])",
            [k.value for k in kinds])
        return count
