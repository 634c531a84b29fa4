"""`velocity gpu …`: the GPU box's jobs and mode, from a terminal, with progress bars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import load_settings
from gpu_hub.jobs import Job, JobStore
from gpu_hub.mode import RUNS, GpuMode, ModeControl, ModeState
from gpu_hub.settings import GpuSettings
from hub.database import Database, start_embedded_postgres
from hub.settings import HubSettings

app = typer.Typer(help="The GPU box: jobs, progress and the GPU mode.")
console = Console()
DataOpt = Annotated[Path | None, typer.Option(
    help="Folder of the embedded PostgreSQL when DATABASE_URL is unset.",
    envvar="VELOCITY_DATA_DIR")]
TenantOpt = Annotated[str | None, typer.Option(
    help="Only this tenant's jobs.", envvar="VELOCITY_GPU_TENANT")]


@asynccontextmanager
async def _control(data_dir: Path | None) -> AsyncIterator[tuple[JobStore, ModeControl]]:
    """The hub's database (no hub started: nothing here runs jobs)."""
    overrides = {"data_dir": data_dir} if data_dir else {}
    settings = load_settings(HubSettings, **overrides)
    url = settings.database_url or start_embedded_postgres(settings.data_dir / "pg")
    async with Database(url, max_size=2) as db:
        jobs = JobStore(db.pool)
        yield jobs, ModeControl(db.pool, jobs, GpuMode(load_settings(GpuSettings).gpu_mode))


def _table(found: list[Job]) -> Table:
    table = Table("job", "tenant", "kind", "status", "progress", "attempts", "note")
    for job in found:
        table.add_row(job.id, job.tenant_id, job.kind.value, job.status.value,
                      f"{job.progress:.0%}", str(job.attempts), (job.error or "")[:60])
    return table


def _describe(state: ModeState) -> str:
    runs = ", ".join(sorted(k.value for k in state.runnable)) or "nothing"
    drain = f" (draining from {state.previous.value})" if state.draining and state.previous \
        else ""
    return f"GPU mode [bold]{state.mode.value}[/]{drain}: runs {runs}"


_COLUMNS = (TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.percentage:>3.0f}% {task.fields[status]}"), TimeElapsedColumn())


async def _follow(store: JobStore, tenant: str | None, limit: int, progress: Progress) -> None:
    """Progress bars for open jobs, until none is open."""
    bars: dict[str, tuple[TaskID, Job]] = {}
    while True:
        open_jobs = await store.list(tenant, open_only=True, limit=limit)
        current = {j.id: j for j in open_jobs}
        for job_id, (bar, last) in list(bars.items()):
            job = current.get(job_id) or await store.get(last.tenant_id, job_id)
            progress.update(bar, completed=job.progress, status=job.status.value)
            bars[job_id] = (bar, job)
        for job in open_jobs:
            if job.id not in bars:
                bar = progress.add_task(f"{job.kind.value} {job.id[-8:]}", total=1.0,
                                        completed=job.progress, status=job.status.value)
                bars[job.id] = (bar, job)
        if not open_jobs:
            return
        await asyncio.sleep(0.5)


@app.command()
def jobs(
    tenant: TenantOpt = None,
    watch: Annotated[bool, typer.Option(
        help="Show progress bars of open jobs until they end.",
        envvar="VELOCITY_GPU_WATCH")] = False,
    limit: Annotated[int, typer.Option(help="Jobs listed.",
                                       envvar="VELOCITY_GPU_LIMIT")] = 30,
    data_dir: DataOpt = None,
) -> None:
    """List GPU jobs (newest first); with --watch, follow the open ones with progress bars."""

    async def run() -> None:
        async with _control(data_dir) as (store, mode):
            console.print(_describe(await mode.state()))
            if not watch:
                console.print(_table(await store.list(tenant, limit=limit)))
                return
            with Progress(*_COLUMNS, console=console) as progress:
                await _follow(store, tenant, limit, progress)

    asyncio.run(run())


@app.command()
def mode(
    target: Annotated[GpuMode | None, typer.Argument(
        help="llm (SGLang on all GPUs), media (one ComfyUI worker per GPU) or split; "
        "omit to show the current mode.")] = None,
    cancel_running: Annotated[bool, typer.Option(
        help="Cancel running jobs the new mode cannot run instead of waiting for them.",
        envvar="VELOCITY_GPU_CANCEL_RUNNING")] = False,
    wait: Annotated[float, typer.Option(
        help="Seconds to wait for the drain, with a progress bar.",
        envvar="VELOCITY_GPU_WAIT")] = 600.0,
    data_dir: DataOpt = None,
) -> None:
    """Show the GPU mode, or switch it: running jobs the new mode cannot run drain first."""

    async def run() -> None:
        async with _control(data_dir) as (store, control):
            if target is None:
                console.print(_describe(await control.state()))
                return
            before = await control.state()
            leaving = sorted(RUNS[before.mode] - RUNS[target])
            state = await control.switch(target, cancel_running=cancel_running)
            total = await store.running(leaving) if leaving else 0
            with Progress(*_COLUMNS, console=console) as progress:
                bar = progress.add_task(f"draining {before.mode.value} → {target.value}",
                                        total=max(total, 1), status="")
                deadline = asyncio.get_running_loop().time() + wait
                while state.draining and asyncio.get_running_loop().time() < deadline:
                    left = await store.running(leaving)
                    progress.update(bar, completed=max(total, 1) - left,
                                    status=f"{left} running")
                    await asyncio.sleep(0.5)
                    state = await control.settle()
                if not state.draining:
                    progress.update(bar, completed=max(total, 1), status="done")
            console.print(_describe(state))
            if state.draining:
                console.print("[yellow]still draining[/]: the switch completes by itself "
                              "when those jobs end (or rerun with --cancel-running)")

    asyncio.run(run())
