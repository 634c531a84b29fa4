"""`velocity hub doctor`: check what a hub needs before it serves, and say what to fix."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from core.errors import VelocityError
from hub.database import start_embedded_postgres
from hub.migrations import pending_migrations
from hub.settings import HubSettings
from hub.storage import server
from schema import collection
from sync.record import RecordDoc
from sync.sandbox import SandboxPool, SandboxRefused

MAX_CLOCK_SKEW_S = 2.0
MIN_FREE_BYTES = 1 << 30
MIN_FREE_FRACTION = 0.05


@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome; ``fix`` says what to do when it failed."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


async def run_checks(settings: HubSettings) -> list[Check]:
    """Database, migrations, clock, disk and sandbox, in that order (later ones need earlier)."""
    checks: list[Check] = []
    url = settings.database_url
    try:
        if url is None:
            url = start_embedded_postgres(settings.data_dir / "pg")
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError, VelocityError) as exc:
        checks.append(Check("database", False, f"cannot connect: {exc}",
                            "start PostgreSQL, or fix DATABASE_URL (unset: embedded server)"))
        return checks
    try:
        version = await server.version(conn)
        checks.append(Check("database", True, f"PostgreSQL {version}"))
        pending = await pending_migrations(conn)
        checks.append(Check(
            "migrations", not pending,
            f"{len(pending)} pending: {', '.join(pending[:3])}" if pending else "up to date",
            "start the hub once (`velocity hub serve` applies them under a lock); back up first"))
        skew = abs(await server.clock(conn) - time.time())
        checks.append(Check("clock", skew <= MAX_CLOCK_SKEW_S,
                            f"hub and PostgreSQL differ by {skew:.3f} s",
                            "synchronise both machines' clocks (NTP)"))
        data_dir = await server.data_directory(conn)
    except asyncpg.PostgresError as exc:
        checks.append(Check("database", False, f"query failed: {exc}",
                            "check the role's privileges on this database"))
        return checks
    finally:
        await conn.close()
    checks.append(_disk(Path(data_dir) if data_dir and Path(data_dir).exists()
                        else settings.data_dir))
    checks.append(await _sandbox(settings))
    return checks


def _disk(folder: Path) -> Check:
    while not folder.exists():
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    ok = usage.free >= MIN_FREE_BYTES and usage.free >= MIN_FREE_FRACTION * usage.total
    return Check("disk", ok, f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} "
                 f"GiB at {folder}", "free space on that disk, or compact old updates "
                 "(`velocity hub compact`)")


async def _sandbox(settings: HubSettings) -> Check:
    doc = RecordDoc(collection("people"), "doctor", client_id=1)
    update = doc.write({"tenant_id": "doctor", "full_name": "Sandbox check"})
    try:
        async with SandboxPool(1, settings.sandbox_timeout_s) as pool:
            result = await pool.apply("people", "doctor", b"", [update])
    except (SandboxRefused, OSError) as exc:
        return Check("sandbox", False, f"a worker could not apply an update: {exc}",
                     "check that this Python can start subprocesses (spawn) and import pycrdt")
    ok = result.content.get("full_name") == "Sandbox check"
    return Check("sandbox", ok, f"worker {result.pid} applied an update",
                 "" if ok else "reinstall the project: the worker computed a wrong record")
