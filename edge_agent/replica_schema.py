"""Numbered migrations of the edge replica's persistent tables, tracked in ``PRAGMA user_version``.

Each migration runs in its own transaction together with the version it sets, so a replica is
always at exactly one version: a crash half-way leaves it at the one before. A new build adds a
migration at the end (never edits one that shipped). The projection tables are not here: they
are TEMP tables rebuilt from the documents at every start.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from core.errors import StorageFailed

MIGRATIONS: tuple[tuple[str, Sequence[str]], ...] = (
    ("the replica's tables", (
        "CREATE TABLE edge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE edge_documents (guid TEXT PRIMARY KEY, collection TEXT NOT NULL, "
        "state BLOB NOT NULL, confirmed BLOB)",
        "CREATE TABLE edge_outbox (position INTEGER PRIMARY KEY AUTOINCREMENT, "
        "update_id TEXT NOT NULL UNIQUE, guid TEXT NOT NULL, data BLOB NOT NULL, "
        "created_at TEXT NOT NULL DEFAULT (datetime('now')))",
        "CREATE TABLE edge_refusals (update_id TEXT PRIMARY KEY, guid TEXT NOT NULL, "
        "reason TEXT NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL DEFAULT "
        "(datetime('now')))",
    )),
    ("the field values a refused change tried to set", (
        "ALTER TABLE edge_refusals ADD COLUMN fields TEXT",
    )),
)
"""(what it adds, its statements); migration N (from 1) brings a replica to user_version N."""
LATEST = len(MIGRATIONS)


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring the replica's tables to `LATEST`, one migration per transaction; the version it
    was at. A replica from a newer build is refused (this build would misread it)."""
    version = await _version(db)
    if version > LATEST:
        raise StorageFailed(f"this replica was made by a newer build (schema {version}, this "
                            f"one knows {LATEST}); update the edge agent")
    start = version
    if version and await _stored_version(db) == 0:  # recognised by its tables: record it
        await db.execute(f"PRAGMA user_version = {version}")
    for number, (_, statements) in enumerate(MIGRATIONS[version:], version + 1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {number}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
    return start


async def _stored_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _version(db: aiosqlite.Connection) -> int:
    """The replica's schema version; a replica made before versions were kept (user_version 0
    with tables) is recognised by its tables."""
    version = await _stored_version(db)
    if version:
        return version
    async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = "
                          "'edge_refusals'") as cur:
        if await cur.fetchone() is None:
            return 0  # a new file
    async with db.execute("PRAGMA table_info(edge_refusals)") as cur:
        columns = {row[1] for row in await cur.fetchall()}
    return 2 if "fields" in columns else 1
