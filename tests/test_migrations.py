"""The hub's numbered migrations, applied in order to an empty database, give exactly the
projection tables the models describe (a model change without a migration fails here); an upgrade
keeps what an older database holds."""

from __future__ import annotations

import asyncpg
import pytest

from hub.database import Database
from hub.migrations import _migrations, apply_migrations
from hub.storage import audit
from hub.store import Change, Committed, HubStore, RefusalReceipt
from schema import COLLECTIONS, collection
from schema.ddl import column_types
from sync.record import RecordDoc
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


LEAN_COMMITS = "hub/0060_lean_commits.sql"


async def _migrated_but(conn: asyncpg.Connection, skipped: str) -> None:
    """Every migration but ``skipped``, recorded as the hub records them: a database from
    before ``skipped`` came."""
    await conn.execute("CREATE TABLE hub_schema_migrations (version text PRIMARY KEY, "
                       "applied_at timestamptz NOT NULL DEFAULT now())")
    for version, sql in _migrations():
        if version != skipped:
            await conn.execute(sql)
            await conn.execute("INSERT INTO hub_schema_migrations VALUES ($1)", version)


async def test_an_upgrade_moves_receipts_into_the_log_without_losing_one() -> None:
    """A database from before lean commits (a receipt table, an audit row per write, and a
    receipt whose log row compaction deleted) upgrades with every receipt, refusal and audit
    entry kept: a device re-sending its old ids gets the same answers, and nothing is listed
    twice in the audit log."""
    url = await fresh_database()
    conn = await asyncpg.connect(url)
    person = RecordDoc(collection("people"), "p1", client_id=7)
    first = person.write({"tenant_id": "t1", "full_name": "Meera Iyer"})
    second = person.write({"city": "Pune"})
    try:
        await _migrated_but(conn, LEAN_COMMITS)
        # As the hub wrote it before: seq 1 (compacted away) and 2 from dev-a, 3 the hub's own.
        await conn.execute("INSERT INTO hub_tenants (tenant_id, name, last_seq, horizon) "
                           "VALUES ('t1', 'T1', 3, 1)")
        await conn.executemany(
            "INSERT INTO hub_updates (tenant_id, seq, guid, data, device_id, user_id) "
            "VALUES ('t1', $1, 'people/p1', $2, $3, 'u1')",
            [(2, second, "dev-a"), (3, second, None)])
        await conn.execute(
            "INSERT INTO hub_documents (tenant_id, guid, collection, record_id, state, "
            "created_seq, updated_seq, scope_seq) VALUES ('t1', 'people/p1', 'people', 'p1', "
            "$1, 1, 3, 1)", person.encode_state())
        await conn.executemany(
            "INSERT INTO hub_push_receipts (tenant_id, device_id, update_id, guid, seq, reason, "
            "message) VALUES ('t1', 'dev-a', $1, 'people/p1', $2, $3, $4)",
            [("a-1", 1, None, None), ("a-2", 2, None, None),
             ("a-9", None, "forbidden", "not yours")])
        await conn.executemany(
            "INSERT INTO hub_audit (tenant_id, user_id, device_id, action, guid, seq) "
            "VALUES ('t1', 'u1', $1, $2, 'people/p1', $3)",
            [("dev-a", "write", 1), ("dev-a", "write", 2), (None, "write", 3),
             ("dev-a", "refused", None)])
        assert LEAN_COMMITS in await apply_migrations(conn)
    finally:
        await conn.close()

    async with Database(url) as db:
        store = HubStore(db)
        refused = RefusalReceipt("people/p1", "forbidden", "not yours")
        assert await store.receipts("t1", "dev-a", ["a-1", "a-2", "a-9", "a-5"]) == {
            "a-1": 1, "a-2": 2, "a-9": refused}
        again = await store.commit("t1", [Change("people/p1", first, "a-1"),
                                          Change("people/p1", second, "a-2"),
                                          Change("people/p1", second, "a-9")],
                                   user_id="u1", device_id="dev-a")
        assert [(r.seq, r.duplicate) for r in again[:2]
                if isinstance(r, Committed)] == [(1, True), (2, True)]
        assert getattr(again[2], "code", None) == "forbidden"
        (fresh,) = await store.commit("t1", [Change("people/p1", person.write(
            {"notes": "after the upgrade"}), "a-5")], user_id="u1", device_id="dev-a")
        assert isinstance(fresh, Committed) and fresh.seq == 4
        assert await store.receipts("t1", "dev-a", ["a-5"]) == {"a-5": 4}
        # the compacted receipt's row is below the horizon: a reader never gets it
        assert await store.high_water("t1") == (4, 1)
        listed = await audit.entries(db.pool, "t1", audit.AuditFilter(limit=200))
        assert [(e["action"], e["seq"]) for e in listed] == [
            ("write", 4), ("refused", None), ("write", 3), ("write", 2), ("write", 1)]


CHECKPOINTS = "hub/0061_document_checkpoints.sql"


async def test_an_upgrade_to_checkpoints_reads_every_document_as_it_was() -> None:
    """Documents stored before checkpoints (every state exact) read the same after the upgrade,
    and take changes as before."""
    url = await fresh_database()
    conn = await asyncpg.connect(url)
    person = RecordDoc(collection("people"), "p1", client_id=7)
    first = person.write({"tenant_id": "t1", "full_name": "Meera Iyer"})
    try:
        await _migrated_but(conn, CHECKPOINTS)
        await conn.execute("INSERT INTO hub_tenants (tenant_id, name, last_seq, horizon) "
                           "VALUES ('t1', 'T1', 1, 0)")
        await conn.execute("INSERT INTO hub_updates (tenant_id, seq, guid, data, device_id) "
                           "VALUES ('t1', 1, 'people/p1', $1, 'dev-a')", first)
        await conn.execute(
            "INSERT INTO hub_documents (tenant_id, guid, collection, record_id, state, "
            "created_seq, updated_seq, scope_seq) VALUES ('t1', 'people/p1', 'people', 'p1', "
            "$1, 1, 1, 1)", person.encode_state())
        assert CHECKPOINTS in await apply_migrations(conn)
    finally:
        await conn.close()

    async with Database(url) as db:
        store = HubStore(db)
        stored = await store.document("t1", "people/p1")
        assert stored is not None and stored.state == person.encode_state()
        (result,) = await store.commit("t1", [Change("people/p1", person.write(
            {"city": "Pune"}), "a-2")], user_id="u1", device_id="dev-a")
        assert isinstance(result, Committed) and result.seq == 2
        stored = await store.document("t1", "people/p1")
        assert stored is not None
        assert RecordDoc(collection("people"), "p1", state=stored.state).content() == (
            person.content())
