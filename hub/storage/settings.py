"""The hub-wide settings row store (``hub_settings``): the identity key and the sealed
token-signing secret, each made once per database and shared by every hub process on it."""

from __future__ import annotations

from collections.abc import Callable

from hub.database import Database

IDENTITY_ROW = "identity_key"


class SettingsStore:
    """Rows of ``hub_settings`` that are made once, by whichever hub comes first."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def identity_key(self, make: Callable[[], str]) -> str:
        """The identity key's stored text, stored first as ``make()`` when there is none (two
        hubs racing keep the first one's)."""
        value = await self._db.pool.fetchval(
            "SELECT value FROM hub_settings WHERE key = $1", IDENTITY_ROW)
        if value is None:
            await self._db.pool.execute(
                "INSERT INTO hub_settings (key, value) VALUES ($1, $2) "
                "ON CONFLICT (key) DO NOTHING", IDENTITY_ROW, make())
            value = await self._db.pool.fetchval(
                "SELECT value FROM hub_settings WHERE key = $1", IDENTITY_ROW)
        return str(value)

    async def sealed_secret(self, sealed_row: str, plain_row: str,
                            seal: Callable[[str | None], str]) -> str:
        """The sealed row's text; without one, ``seal(plain)`` of the plain row (deleted) or of
        None is stored first, all under a table lock so that every hub keeps the same."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE hub_settings IN SHARE ROW EXCLUSIVE MODE")
            sealed = await conn.fetchval("SELECT value FROM hub_settings WHERE key = $1",
                                         sealed_row)
            if sealed is None:
                plain = await conn.fetchval(
                    "DELETE FROM hub_settings WHERE key = $1 RETURNING value", plain_row)
                sealed = seal(plain)
                await conn.execute("INSERT INTO hub_settings (key, value) VALUES ($1, $2)",
                                   sealed_row, sealed)
        return str(sealed)
