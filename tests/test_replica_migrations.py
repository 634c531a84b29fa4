"""Numbered migrations of the edge replica: a replica file made by an earlier build opens with
every document, outbox entry, refusal and cursor intact, at the latest schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import StorageFailed
from edge_agent.crypto import Sealer
from edge_agent.replica import Replica
from edge_agent.replica_schema import LATEST
from schema import collection
from sync.record import RecordDoc

pytestmark = pytest.mark.anyio
SECRET = b"m" * 32
PEOPLE = collection("people")

FIRST_DDL = """
CREATE TABLE IF NOT EXISTS edge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edge_documents (
    guid TEXT PRIMARY KEY, collection TEXT NOT NULL, state BLOB NOT NULL, confirmed BLOB
);
CREATE TABLE IF NOT EXISTS edge_outbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT, update_id TEXT NOT NULL UNIQUE,
    guid TEXT NOT NULL, data BLOB NOT NULL, created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS edge_refusals (
    update_id TEXT PRIMARY KEY, guid TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT (datetime('now'))
);
"""
"""The replica's tables as the first builds made them (no version kept, no refused fields)."""
UNVERSIONED_DDL = FIRST_DDL.replace(
    "at TEXT NOT NULL DEFAULT (datetime('now'))\n", "at TEXT NOT NULL DEFAULT "
    "(datetime('now')), fields TEXT\n")
"""The tables as the build before numbered migrations made them (user_version still 0)."""


def _old_replica(path: Path, ddl: str) -> tuple[dict[str, dict[str, object]], list[bytes]]:
    """A replica file written with ``ddl`` and plain sqlite3, as an older build left it: three
    people (one confirmed by the hub), two pending changes, a refusal and a cursor; what each
    document holds, and the pending changes."""
    sealer = Sealer(SECRET)
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    held: dict[str, dict[str, object]] = {}
    pending: list[bytes] = []
    for n in range(3):
        doc = RecordDoc(PEOPLE, f"p{n}", client_id=21)
        doc.write({"tenant_id": "t1", "full_name": f"Client {n}", "city": "Pune"})
        confirmed = doc.encode_state() if n == 0 else None
        edit = doc.write({"notes": f"second visit {n}"}) if n < 2 else None
        state = doc.encode_state()
        conn.execute("INSERT INTO edge_documents VALUES (?, ?, ?, ?)", (
            doc.guid, "people", sealer.seal(state, doc.guid),
            sealer.seal(confirmed, doc.guid) if confirmed else None))
        if edit is not None:
            conn.execute("INSERT INTO edge_outbox (update_id, guid, data) VALUES (?, ?, ?)",
                         (f"u{n}", doc.guid, sealer.seal(edit, doc.guid)))
            pending.append(edit)
        held[doc.guid] = doc.content()
    conn.execute("INSERT INTO edge_refusals (update_id, guid, reason, message) VALUES "
                 "('u-old', 'people/p9', 'not_owner', 'you may not change this client')")
    conn.execute("INSERT INTO edge_meta VALUES ('cursor', '41')")
    conn.commit()
    conn.close()
    return held, pending


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@pytest.mark.parametrize("ddl", [FIRST_DDL, UNVERSIONED_DDL], ids=["first", "unversioned"])
async def test_a_replica_of_an_earlier_build_opens_with_everything_intact(
        tmp_path: Path, ddl: str) -> None:
    path = tmp_path / "replica.db"
    held, pending = _old_replica(path, ddl)
    assert _user_version(path) == 0
    for _ in range(2):  # the second opening finds nothing to do
        async with Replica(path, Sealer(SECRET), client_id=21) as replica:
            assert {d.guid: d.content() for d in replica.documents()} == held
            outbox = await replica.outbox(10)
            assert [(e.update_id, e.guid) for e in outbox] == [("u0", "people/p0"),
                                                              ("u1", "people/p1")]
            assert [e.data for e in outbox] == pending  # opened with the same key
            assert await replica.cursor() == 41
            refusals = await replica.refusals()
            assert [r["update_id"] for r in refusals] == ["u-old"]
            rows = await replica.query("SELECT id, city FROM temp.crm_people ORDER BY id")
            assert rows == [{"id": f"p{n}", "city": "Pune"} for n in range(3)]
        assert _user_version(path) == LATEST


async def test_a_new_replica_is_made_at_the_latest_version_and_a_newer_one_is_refused(
        tmp_path: Path) -> None:
    path = tmp_path / "replica.db"
    async with Replica(path, Sealer(SECRET), client_id=22) as replica:
        await replica.write("people", "p1", {"tenant_id": "t1", "full_name": "New"})
    assert _user_version(path) == LATEST
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(StorageFailed, match="newer build"):
        async with Replica(path, Sealer(SECRET), client_id=22):
            pass
