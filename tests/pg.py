"""A real PostgreSQL for tests: ``DATABASE_URL`` when set, else a private one from `pgserver`."""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

_server_url: str | None = None


def server_url() -> str:
    """URL of a PostgreSQL server (started once per test session when none is configured)."""
    global _server_url
    if _server_url is None:
        env = os.environ.get("DATABASE_URL")
        if env:
            _server_url = env
        else:
            import pgserver

            data = Path(tempfile.mkdtemp(prefix="velocity-test-pg-"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _server_url = str(pgserver.get_server(data, cleanup_mode="delete").get_uri())
    return _server_url


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def fresh_database() -> str:
    """Create an empty database for one test and return its URL."""
    name = f"velocity_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(server_url(), name)
