"""`velocity gpu jobs` and `velocity gpu mode` against the hub's database."""

from __future__ import annotations

import asyncio
import threading

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.identity import Principal, Role
from gpu_hub.jobs import JobKind, JobStatus, JobStore
from hub.database import Database
from tests.pg import fresh_database


async def _job(url: str, status: JobStatus, progress: float) -> str:
    async with Database(url) as db:
        store = JobStore(db.pool)
        job, _ = await store.submit(Principal("t1", "u1", Role.ADMIN), JobKind.DREAM_WEAVER,
                                    {"room_type": "bedroom"})
        await db.pool.execute("UPDATE gpu_jobs SET status = $2, progress = $3 WHERE id = $1",
                              job.id, status.value, progress)
        return job.id


async def _finish_later(url: str, job_id: str) -> None:
    await asyncio.sleep(1.5)
    async with Database(url) as db:
        await db.pool.execute("UPDATE gpu_jobs SET status = 'done', progress = 1 "
                              "WHERE id = $1", job_id)


def test_gpu_jobs_and_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    url = asyncio.run(fresh_database())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    job_id = asyncio.run(_job(url, JobStatus.RUNNING, 0.4))
    runner = CliRunner()
    result = runner.invoke(app, ["gpu", "jobs"])
    assert result.exit_code == 0, result.output
    assert job_id in result.output and "40%" in result.output and "split" in result.output
    # --watch follows the open job with a progress bar until it ends
    finisher = threading.Thread(target=asyncio.run, args=(_finish_later(url, job_id),))
    finisher.start()
    result = runner.invoke(app, ["gpu", "jobs", "--watch"])
    finisher.join()
    assert result.exit_code == 0, result.output
    assert "dream_weaver" in result.output and "100% done" in result.output
    # a switch with a render still running drains (here: cancelled on request)
    running = asyncio.run(_job(url, JobStatus.RUNNING, 0.1))
    result = runner.invoke(app, ["gpu", "mode", "llm", "--wait", "0.5"])
    assert result.exit_code == 0, result.output
    assert "still draining" in result.output and "draining from split" in result.output
    result = runner.invoke(app, ["gpu", "mode"])
    assert "draining" in result.output
    asyncio.run(_finish_running(url, running))
    result = runner.invoke(app, ["gpu", "mode", "llm", "--wait", "5"])
    assert "GPU mode llm: runs llm_batch" in result.output and "still" not in result.output


async def _finish_running(url: str, job_id: str) -> None:
    async with Database(url) as db:
        await db.pool.execute("UPDATE gpu_jobs SET status = 'cancelled' WHERE id = $1", job_id)
