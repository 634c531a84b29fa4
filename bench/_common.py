"""Shared bits of the benchmarks: timing, percentiles, writing results."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from hub.database import stop_embedded_postgres

RESULTS = Path(__file__).parent / "results"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of ``fn()``, with the garbage collector run before and paused during, so a
    collection triggered by an earlier step is not billed to this one."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        value = fn()
        return time.perf_counter() - start, value
    finally:
        gc.enable()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def write_results(name: str, figures: dict[str, Any], markdown: str) -> Path:
    """Write ``bench/results/<name>.json`` and ``.md`` with the machine they ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count()}
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, **figures}, indent=2))
    path = RESULTS / f"{name}.md"
    path.write_text(markdown + f"\n\n_{meta['ran_at']}, Python {meta['python']}, "
                    f"{meta['cpus']} CPUs_\n")
    return path


@contextmanager
def hub_in_process(target: Callable[..., None], folder: Path, *args: Any) -> Iterator[Connection]:
    """Run ``target(folder, *args, conn)`` (a hub, as in production) in its own process and
    yield our end of its pipe; on exit wait for it (kill it after 30 s), stop the embedded
    PostgreSQL it started under ``folder/hub/pg`` and remove ``folder``."""
    from hub.database import stop_embedded_postgres

    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    hub = multiprocessing.get_context("spawn").Process(
        target=target, args=(folder, *args, theirs))  # not daemonic: it spawns workers
    hub.start()
    try:
        yield ours
    finally:
        hub.join(timeout=30)
        if hub.is_alive():
            hub.kill()
        stop_embedded_postgres(folder / "hub" / "pg")
        shutil.rmtree(folder, ignore_errors=True)


async def device_handshake(sync_url: str, device_id: str, key: Any, client_id: int) -> Any:
    """Open a sync session as a paired device (HELLO, signed AUTH, WELCOME); its websocket."""
    import websockets

    from sync import protocol as p

    ws = await websockets.connect(sync_url, max_size=None)
    await ws.send(p.encode(p.Hello(device_id, 0, (client_id,))))
    challenge = p.decode(await ws.recv())  # type: ignore[arg-type]
    assert isinstance(challenge, p.Challenge), challenge
    await ws.send(p.encode(p.Auth(key.sign_challenge(challenge.nonce, device_id))))
    welcome = p.decode(await ws.recv())  # type: ignore[arg-type]
    assert isinstance(welcome, p.Welcome), welcome
    return ws


async def create_database(server_url: str, prefix: str) -> str:
    """A database of a run's own on the server of ``server_url`` (others' tests may reset the
    shared one while a bench runs); its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


@asynccontextmanager
async def database_of_its_own(prefix: str, embedded: Path | None = None
                              ) -> AsyncIterator[str | None]:
    """A database of the run's own on the ``DATABASE_URL`` server, dropped on exit; None when
    ``DATABASE_URL`` is unset (the hub then starts a private PostgreSQL of its own, in
    ``embedded``, which is stopped on exit)."""
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        try:
            yield None
        finally:
            if embedded is not None:
                stop_embedded_postgres(embedded)
        return
    url = await create_database(server_url, prefix)
    try:
        yield url
    finally:
        await drop_database(server_url, url)


async def drop_database(server_url: str, url: str) -> None:
    """Drop a database `create_database` made (connections and all)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
    finally:
        await conn.close()

