"""What the hub asks PostgreSQL about itself: reachability, version, clock, data folder."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

from hub.database import Database

Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


async def version(on: Executor) -> str:
    """The server's version (``SHOW server_version``)."""
    return str(await on.fetchval("SHOW server_version"))


async def clock(on: Executor) -> float:
    """The server's clock, in seconds since the epoch."""
    return float(await on.fetchval("SELECT extract(epoch FROM clock_timestamp())"))


async def data_directory(on: Executor) -> str | None:
    """PostgreSQL's data folder, when the role may see it (superusers, pg_read_all_settings)."""
    try:
        return str(await on.fetchval("SHOW data_directory"))
    except asyncpg.InsufficientPrivilegeError:
        return None


class ServerInfo:
    """The running hub's database server."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def ping(self) -> None:
        """One round trip (raises when the database is away)."""
        await self._db.pool.fetchval("SELECT 1")

    async def version(self) -> str:
        return await version(self._db.pool)
