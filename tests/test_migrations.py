"""The hub's numbered migrations, applied in order to an empty database, give exactly the
projection tables the models describe (a model change without a migration fails here)."""

from __future__ import annotations

import asyncpg
import pytest

from hub.migrations import apply_migrations
from schema import COLLECTIONS
from schema.ddl import column_types
from tests.pg import fresh_database

pytestmark = pytest.mark.anyio

_PG_TYPES = {
    "str": "text", "int": "bigint", "float": "double precision", "bool": "boolean",
    "datetime": "timestamp with time zone", "date": "date", "json": "jsonb",
}


async def test_migrations_build_the_tables_the_models_describe() -> None:
    conn = await asyncpg.connect(await fresh_database())
    try:
        await apply_migrations(conn)
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'")
    finally:
        await conn.close()
    found: dict[str, dict[str, str]] = {}
    for r in rows:
        found.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    for coll in COLLECTIONS.values():
        wanted = {"tenant_id": "text"} | {n: _PG_TYPES[t] for n, t in column_types(coll).items()}
        assert found.get(coll.table) == wanted, (
            f"{coll.table}: the migrations and the model disagree; add a numbered migration "
            "under schema/sql/ (CREATE TABLE for a new collection, ALTER TABLE for a new field)")
