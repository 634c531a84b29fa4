"""Edge-first GPU requests (``intel_gpu_requests``) beside the jobs they became (``gpu_jobs``,
gpu_hub's table): the ones to start, to bring up to their job, and to cancel."""

from __future__ import annotations

import asyncpg

from hub.database import Database

Records = list[asyncpg.Record]


class GpuRequestStore:
    """The watcher's three reads, each at most ``limit`` rows."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def new(self, limit: int) -> Records:
        """Requests not started yet, oldest first."""
        rows: Records = await self._db.pool.fetch(
            "SELECT * FROM intel_gpu_requests WHERE status = 'requested' AND NOT deleted "
            "ORDER BY requested_at LIMIT $1", limit)
        return rows

    async def behind_their_job(self, progress_step: float, limit: int) -> Records:
        """Unfinished requests whose job moved on (status, or progress by ``progress_step``):
        ``tenant_id, id, owner_id, status, progress, job``."""
        rows: Records = await self._db.pool.fetch(
            "SELECT r.tenant_id, r.id, r.owner_id, r.status, r.progress, j.id AS job "
            "FROM intel_gpu_requests r JOIN gpu_jobs j ON j.tenant_id = r.tenant_id "
            "AND j.id = r.job_id WHERE r.status IN ('queued', 'running') "
            "AND (j.status <> r.status OR abs(j.progress - r.progress) >= $1 "
            "OR j.status NOT IN ('queued', 'running')) LIMIT $2", progress_step, limit)
        return rows

    async def withdrawn_jobs(self, limit: int) -> Records:
        """``tenant_id, id`` of the live jobs of requests withdrawn on the device."""
        rows: Records = await self._db.pool.fetch(
            "SELECT j.tenant_id, j.id FROM intel_gpu_requests r JOIN gpu_jobs j "
            "ON j.tenant_id = r.tenant_id AND j.id = r.job_id WHERE r.deleted "
            "AND r.status IN ('queued', 'running') AND j.status IN ('queued', 'running') "
            "AND NOT j.cancel_requested LIMIT $1", limit)
        return rows
