"""The hub's PostgreSQL: an external server from ``DATABASE_URL`` or a private embedded one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg

from core.errors import ConfigError, StorageError
from hub.migrations import apply_migrations

_log = logging.getLogger(__name__)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is (asyncpg still rolls back an open transaction).

    asyncpg's default reset runs ``RESET ALL; UNLISTEN *; …`` on every release, a round trip per
    query the hub makes; the hub never changes session state on pooled connections (LISTEN has
    its own connection, advisory locks are transaction-scoped)."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) a private PostgreSQL from the `pgserver` wheel; returns its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pgserver

        server = pgserver.get_server(data_dir, cleanup_mode=None)
    return str(server.get_uri())


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the private PostgreSQL that `start_embedded_postgres` left running in ``data_dir``
    (its data stays); nothing happens when none was started there."""
    if not (data_dir / "postmaster.pid").exists():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(data_dir)
        server.cleanup_mode = "stop"  # a handle this process already holds keeps its own mode
        server.cleanup()


class Database(AbstractAsyncContextManager["Database"]):
    """An asyncpg pool with the hub's migrations applied at start."""

    def __init__(self, url: str, *, min_size: int = 4, max_size: int = 10) -> None:
        self.url = url
        self._min, self._max = min(min_size, max_size), max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("database is not open; use `async with Database(url)`")
        return self._pool

    async def __aenter__(self) -> Database:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._min, max_size=self._max, init=_init_connection,
                reset=_keep_session, server_settings={"plan_cache_mode": "force_custom_plan"},
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(
                f"cannot connect to PostgreSQL at DATABASE_URL ({exc}); check the URL, or unset "
                "it to use the embedded server"
            ) from exc
        async with self.pool.acquire() as conn:
            await apply_migrations(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def connect_raw(self) -> Any:
        """A dedicated connection (for LISTEN), outside the pool."""
        return await asyncpg.connect(self.url)

    async def notify(self, channel: str, payload: str) -> None:
        """Send ``payload`` to every listener of ``channel`` (in any hub process), at once."""
        await self.pool.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def listen_forever(self, listeners: Mapping[str, Callable[..., None]], *,
                             what: str, on_listening: Callable[[], None]) -> None:
        """LISTEN on each channel with its callback on a dedicated connection, for as long as
        the task runs; a lost connection is made again with backoff, and ``on_listening`` runs
        each time the listeners are in place (notices sent meanwhile are lost)."""
        delay = 0.5
        while True:
            conn = None
            try:
                conn = await self.connect_raw()
                for channel, callback in listeners.items():
                    await conn.add_listener(channel, callback)
                on_listening()
                delay = 0.5
                while not conn.is_closed():
                    await asyncio.sleep(1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: retry with backoff
                _log.warning("%s listener lost (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close())
