"""Versioned SQL migrations, applied in order at start under an advisory lock."""

from __future__ import annotations

from importlib import resources
from typing import Any

_LOCK_KEY = 0x7E10C17


def _migrations() -> list[tuple[str, str]]:
    hub_sql = resources.files("hub.migrations")
    schema_sql = resources.files("schema.sql")
    hub = sorted((p.name, p) for p in hub_sql.iterdir() if p.name.endswith(".sql"))
    projection = sorted(
        (p.name, p)
        for p in schema_sql.iterdir()
        if p.name.startswith("postgres_") and p.name.endswith(".sql")
    )
    gpu_sql = resources.files("gpu_hub.sql")
    gpu = sorted((p.name, p) for p in gpu_sql.iterdir() if p.name.endswith(".sql"))
    return (
        [(f"hub/{n}", p.read_text()) for n, p in hub]
        + [(f"schema/{n}", p.read_text()) for n, p in projection]
        + [(f"gpu_hub/{n}", p.read_text()) for n, p in gpu]
    )


async def pending_migrations(conn: Any) -> list[str]:
    """Migrations this hub's code has that the database has not recorded yet."""
    exists = await conn.fetchval("SELECT to_regclass('hub_schema_migrations') IS NOT NULL")
    done = ({r["version"] for r in await conn.fetch("SELECT version FROM hub_schema_migrations")}
            if exists else set())
    return [version for version, _ in _migrations() if version not in done]


async def apply_migrations(conn: Any) -> list[str]:
    """Apply every migration not yet recorded; safe when several hubs start at once."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS hub_schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM hub_schema_migrations")}
        for version, sql in _migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO hub_schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
    return applied
