"""Document checkpoints: a stored state plus the log rows after it (its tail).

A commit appends each update to the log and writes the document's whole state again only once
its tail reaches `CHECKPOINT_ROWS` (or when it has the state at hand anyway), so an update's cost
does not grow with the document's history. Whoever reads a state reads the tail with it, in the
same statement (one snapshot: compaction checkpoints a document before it blanks its tail).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from core.errors import StorageError
from core.ids import split_guid
from schema import collection
from sync.record import RecordDoc

CHECKPOINT_ROWS = 32
"""A document's state is written again once this many of its log rows are not in it (measured:
see docs/decisions.md, "Hub at scale")."""


TAIL_SQL = ("CASE WHEN d.state_seq IS NULL THEN NULL ELSE ARRAY(SELECT u.data FROM "
            "hub_updates u WHERE u.tenant_id = d.tenant_id AND u.guid = d.guid AND "
            "u.seq > d.state_seq AND u.seq <= d.updated_seq ORDER BY u.seq) END")
"""SQL for the data of the log rows of document ``d`` (``hub_documents d``) after its
checkpoint, in order (NULL when the stored state is exact); selected ``AS tail``."""
STATE_SQL = f"d.guid, d.state, {TAIL_SQL} AS tail"
"""The columns `state_of` reads, for a select from ``hub_documents d``."""


def materialize(guid: str, state: bytes, tail: Sequence[bytes] | None) -> bytes:
    """The document's state now: ``state`` with its ``tail`` applied."""
    if not tail:
        return bytes(state)
    if any(not data for data in tail):
        raise StorageError(f"{guid}: a log row of its tail was compacted away")
    coll_name, record_id = split_guid(guid)
    doc = RecordDoc(collection(coll_name), record_id, state=bytes(state) or None)
    doc.apply_log([bytes(data) for data in tail])
    return doc.encode_state()


def state_of(row: asyncpg.Record) -> bytes:
    """The current state of a row selected with `STATE_SQL`."""
    return materialize(row["guid"], row["state"], row["tail"])


async def checkpoint_behind(conn: asyncpg.Connection, tenant_id: str, horizon: int) -> None:
    """Write the exact state of every document whose tail reaches back to ``horizon`` or
    before (compaction is about to blank those rows). The caller holds the tenant's sequence
    row."""
    rows = await conn.fetch(
        f"SELECT {STATE_SQL} FROM hub_documents d WHERE d.tenant_id = $1 "
        "AND d.state_seq IS NOT NULL AND d.state_seq < $2", tenant_id, horizon)
    if rows:
        await conn.executemany(
            "UPDATE hub_documents SET state = $3, state_seq = NULL, tail_rows = 0 "
            "WHERE tenant_id = $1 AND guid = $2",
            [(tenant_id, r["guid"], state_of(r)) for r in rows])
