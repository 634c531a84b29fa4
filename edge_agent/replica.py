"""The device's durable replica on SQLite (aiosqlite, WAL, synchronous=FULL).

On disk: sealed document states (current and hub-confirmed), the sealed outbox of local updates,
the pull cursor and refusals. The projection tables (same DDL as the hub) live in SQLite's TEMP
schema in memory and are rebuilt from the documents at start: they are derived, and keeping them
in memory keeps client names off the disk. One SQLite transaction covers a local write: document,
outbox and projection together.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import json
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from difflib import SequenceMatcher
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from core.errors import (
    DiskFull,
    NotFound,
    RecordInvalid,
    StorageError,
    StorageFailed,
    VelocityError,
)
from core.ids import make_guid, new_id, split_guid
from edge_agent.confirmed_docs import ConfirmedDocs
from edge_agent.crypto import Sealer
from edge_agent.replica_schema import migrate
from schema import Collection, CrdtKind, collection, to_row
from schema.ddl import column_types
from schema.models import Record
from sync import protocol as p
from sync.record import RecordDoc

WAL_LIMIT_BYTES = 4 << 20
"""The WAL file is cut back to this size after a checkpoint (SQLite's journal_size_limit);
left alone it keeps the largest size it ever reached, a bootstrap's worth."""
WAL_TRIM_BYTES = 16 << 20
"""A WAL grown past this (a long pull, the device's only connection always busy) is
checkpointed and truncated at once."""
LOW_DISK_BYTES = 1 << 20
_FAILED_STORAGE = {sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_CANTOPEN,
                   sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB}


def storage_error(exc: sqlite3.Error) -> StorageError | None:
    """What a SQLite failure means for the person (None: not the storage's fault, a bug)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return DiskFull("the device's storage is full, so this change was not saved (earlier "
                        "work is safe): free some space, then try again")
    if code in _FAILED_STORAGE:
        return StorageFailed(f"the device could not read or write its data ({exc}): restart "
                             "the app; if it happens again, check the device's storage")
    return None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one pull batch (bounded by the hub's batch
    size). A batch allocates thousands of small containers (documents, their content, rows);
    collections triggered in the middle of it cost about a third of bootstrap time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_SAVE_SQL = (
    "INSERT INTO edge_documents (guid, collection, state, confirmed) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (guid) DO UPDATE SET state = excluded.state, confirmed = "
    "COALESCE(excluded.confirmed, edge_documents.confirmed)")
"""Store a document's sealed state (and its confirmed state, when given)."""


def _projection_ddl() -> str:
    sql = resources.files("schema.sql").joinpath("sqlite_0001_projection.sql").read_text()
    sql = sql.replace("CREATE TABLE IF NOT EXISTS ", "CREATE TEMP TABLE IF NOT EXISTS ")
    return sql.replace("CREATE INDEX IF NOT EXISTS ", "CREATE INDEX IF NOT EXISTS temp.")


class RefusalKind(enum.Enum):
    IGNORED = "ignored"
    """No longer in the outbox (handled already)."""
    RETRY = "retry"
    """Kept under a new id at its place in the outbox: push it again."""
    REBUILT = "rebuilt"
    """Final: the document was rebuilt without it; later changes re-made at the outbox's end."""


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: RefusalKind
    position: int = 0
    """The refused update's outbox position."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    update_id: str
    guid: str
    data: bytes
    position: int = 0


class Replica:
    """Documents, outbox, cursor and projection of one device."""

    def __init__(self, path: Path, sealer: Sealer, client_id: int) -> None:
        self.path = path
        self._sealer = sealer
        self.client_id = client_id
        self._db: aiosqlite.Connection | None = None
        self._docs: dict[str, RecordDoc] = {}
        self._confirmed_docs = ConfirmedDocs()
        self._tx_lock = asyncio.Lock()  # one connection: transactions take turns
        self.invalid: dict[str, str] = {}
        """Documents that do not project (guid → problem); kept, never shown as records."""
        self.storage_error: str | None = None
        """The last storage failure (disk full, I/O error); cleared by the next commit."""

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("replica is not open; use `async with Replica(...)`")
        return self._db

    async def __aenter__(self) -> Replica:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await self.db.execute("PRAGMA journal_mode=WAL")
            await self.db.execute("PRAGMA synchronous=FULL")
            await self.db.execute("PRAGMA temp_store=MEMORY")
            await self.db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            await migrate(self.db)  # the persistent tables, numbered (edge_agent.replica_schema)
            await self.db.executescript(_projection_ddl())
            await self._load()
        except BaseException:
            await self.db.close()
            self._db = None
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _load(self) -> None:
        """Open every document and rebuild the in-memory projection, one table at a time."""
        await self.db.execute("BEGIN")
        async with self.db.execute("SELECT guid, state FROM edge_documents") as cur:
            async for guid, blob in cur:
                coll_name, record_id = split_guid(guid)
                self._docs[guid] = RecordDoc(collection(coll_name), record_id,
                                             client_id=self.client_id,
                                             state=self._sealer.open(blob, guid))
        await self._project_many(self._docs.values())
        await self.db.execute("COMMIT")

    # --- meta -----------------------------------------------------------------------------

    async def get_meta(self, key: str, default: str | None = None) -> str | None:
        async with self.db.execute("SELECT value FROM edge_meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return row[0] if row else default

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO edge_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value", (key, value),
        )

    async def cursor(self) -> int:
        return int(await self.get_meta("cursor", "0") or 0)

    # --- documents --------------------------------------------------------------------------

    @property
    def document_count(self) -> int:
        return sum(1 for _ in self.documents())

    def documents(self) -> Iterator[RecordDoc]:
        """Every non-empty document on the device."""
        return (d for d in self._docs.values() if not d.is_empty)

    def document(self, guid: str) -> RecordDoc:
        coll_name, record_id = split_guid(guid)
        doc = self._docs.get(guid)
        if doc is None:
            doc = RecordDoc(collection(coll_name), record_id, client_id=self.client_id)
            self._docs[guid] = doc
        return doc

    def record(self, coll_name: str, record_id: str) -> Record:
        doc = self._docs.get(make_guid(coll_name, record_id))
        if doc is None or doc.is_empty:
            raise NotFound(f"no {coll_name} record {record_id} on this device")
        return doc.project()

    async def _save(self, doc: RecordDoc) -> None:
        state = self._sealer.seal(doc.encode_state(), doc.guid)
        await self.db.execute(_SAVE_SQL, (doc.guid, doc.collection.name, state, None))

    async def _confirmed(self, guid: str) -> bytes | None:
        async with self.db.execute("SELECT confirmed FROM edge_documents WHERE guid = ?",
                                   (guid,)) as cur:
            row = await cur.fetchone()
        return self._sealer.open(row[0], guid) if row and row[0] is not None else None

    async def _project(self, doc: RecordDoc) -> None:
        await self._project_many([doc])

    async def _project_many(self, docs: Iterable[RecordDoc]) -> None:
        """Refresh the projection rows of ``docs``, one statement per table."""
        rows: dict[str, tuple[Collection, list[dict[str, Any]]]] = {}
        for doc in docs:
            row = self._projection_row(doc)
            if row is not None:
                rows.setdefault(doc.collection.name, (doc.collection, []))[1].append(row)
        for coll, coll_rows in rows.values():
            await _upsert_many(self.db, coll, coll_rows)

    def _projection_row(self, doc: RecordDoc) -> dict[str, Any] | None:
        """The document's projection row, or None (and noted in ``invalid``) when it does not
        validate."""
        try:
            row = to_row(doc.project())
        except RecordInvalid as exc:
            self.invalid[doc.guid] = exc.message
            return None
        self.invalid.pop(doc.guid, None)
        return row

    # --- local writes -----------------------------------------------------------------------

    async def write(self, coll_name: str, record_id: str,
                    values: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
                    ) -> Record:
        """One local change, durable on return: document, outbox and projection in one
        transaction. The network is never involved. ``values`` may be a function of the
        document's content as it stands inside the transaction (a list edit)."""
        return (await self.write_many([(coll_name, record_id, values)]))[0]

    async def write_many(
        self, writes: Sequence[tuple[str, str, dict[str, Any]
                                     | Callable[[dict[str, Any]], dict[str, Any]]]],
    ) -> list[Record]:
        """Several local changes (collection, id, values) in one transaction: all or none. A
        full disk gets one more try after the WAL is checkpointed and truncated (that may be
        the space it needs)."""
        try:
            return await self._write_many(writes)
        except DiskFull:
            return await self._write_many(writes)

    async def _write_many(
        self, writes: Sequence[tuple[str, str, dict[str, Any]
                                     | Callable[[dict[str, Any]], dict[str, Any]]]],
    ) -> list[Record]:
        docs = []
        async with self._transaction() as dirty:
            for coll_name, record_id, values in writes:
                guid = make_guid(coll_name, record_id)
                dirty.add(guid)
                doc = self.document(guid)  # inside: a failed pull may have reloaded it
                # validates first; raises before touching anything
                update = doc.write(values(doc.content()) if callable(values) else values)
                await self._save(doc)
                await self.db.execute(
                    "INSERT INTO edge_outbox (update_id, guid, data) VALUES (?, ?, ?)",
                    (new_id(), guid, self._sealer.seal(update, guid)),
                )
                await self._project(doc)
                docs.append(doc)
        return [doc.project() for doc in docs]

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[set[str]]:
        """One ``BEGIN IMMEDIATE … COMMIT`` at a time (local writes and pulls run concurrently
        on one connection). The caller adds to the yielded set the guids whose
        in-memory documents it changes; on any failure, cancellation included, the transaction
        is rolled back and those documents are reloaded from disk, so memory always equals
        what is committed. A storage failure is raised as `DiskFull` or `StorageFailed` (after
        a checkpoint that may free space) and kept in ``storage_error`` until a commit works."""
        dirty: set[str] = set()
        async with self._tx_lock:
            try:
                await self.db.execute("BEGIN IMMEDIATE")
                yield dirty
                await self.db.execute("COMMIT")
            except BaseException as exc:
                # Nothing may be open: BEGIN never ran, or COMMIT ran before a cancellation.
                with suppress(sqlite3.Error):
                    await self.db.execute("ROLLBACK")
                with suppress(sqlite3.Error):  # a failing disk may fail this too: memory
                    await self._reload(dirty)  # then reloads on the next transaction
                failure = storage_error(exc) if isinstance(exc, sqlite3.Error) else None
                if failure is None:
                    raise
                self.storage_error = failure.message
                if isinstance(failure, DiskFull):
                    await self.checkpoint()
                raise failure from exc
            self.storage_error = None
        await self._trim_wal()

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it (frees its space on a full disk)."""
        with suppress(sqlite3.Error):
            await self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def _trim_wal(self) -> None:
        if _size(self._wal_path) > WAL_TRIM_BYTES:
            await self.checkpoint()

    @property
    def _wal_path(self) -> Path:
        return self.path.with_name(self.path.name + "-wal")

    def storage(self) -> dict[str, Any]:
        """The replica's storage as the person and `velocity edge status` see it."""
        free = shutil.disk_usage(self.path.parent).free
        error = self.storage_error or (
            f"the device's storage is almost full ({free} bytes free): free some space"
            if free < LOW_DISK_BYTES else None)
        return {"error": error, "disk_free_bytes": free,
                "database_bytes": _size(self.path), "wal_bytes": _size(self._wal_path)}

    # --- sync -------------------------------------------------------------------------------

    async def outbox(self, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        """Up to ``limit`` pending updates in outbox order, from just after ``after`` (a
        position): the pusher reads on from where it stopped instead of from the start."""
        async with self.db.execute(
            "SELECT update_id, guid, data, position FROM edge_outbox WHERE position > ? "
            "ORDER BY position LIMIT ?", (after, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [OutboxEntry(u, g, self._sealer.open(d, g), n) for u, g, d, n in rows]

    async def pending_count(self) -> int:
        async with self.db.execute("SELECT count(*) FROM edge_outbox") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def apply_pulled(self, items: Iterable[tuple[str, bytes, bool]], cursor: int, *,
                           removed: Sequence[str] = ()) -> int:
        """Apply a pull batch of (guid, data, is_snapshot) and advance the cursor in one
        transaction; returns the number of documents touched.

        A hub snapshot of a document this device does not hold yet is loaded directly (it is
        self-contained and is also the confirmed state). A document that fails to apply is
        reported in ``invalid``; it never blocks the rest of the batch. Documents in
        ``removed`` left this device's scope (reassigned to another broker): they are dropped
        with their unsent changes, and the person is told (a refusal with reason
        ``left_scope``).
        """
        with _collector_paused():
            return await self._apply_pulled(list(items), cursor, removed)

    async def _apply_pulled(self, batch: list[tuple[str, bytes, bool]], cursor: int,
                            removed: Sequence[str]) -> int:
        touched: dict[str, RecordDoc] = {}
        confirmed: dict[str, bytes] = {}
        confirming: dict[str, RecordDoc] = {}  # built once per document per batch
        states: dict[str, bytes] = {}  # a snapshot just loaded is already its own state
        async with self._transaction() as dirty:
            held = await self._confirmed_many({g for g, _, _ in batch if g in self._docs})
            for guid, data, snapshot in batch:
                dirty.add(guid)
                doc = self._docs.get(guid)
                if (snapshot and (doc is None or doc.is_empty) and guid not in confirmed
                        and guid not in confirming):
                    coll_name, record_id = split_guid(guid)
                    try:
                        doc = RecordDoc(collection(coll_name), record_id,
                                        client_id=self.client_id, state=data)
                    except VelocityError as exc:
                        self.invalid[guid] = exc.message
                        continue
                    self._docs[guid] = doc
                    confirmed[guid] = states[guid] = data
                    confirming.pop(guid, None)
                    touched[guid] = doc
                    continue
                doc = self.document(guid)
                try:
                    doc.apply(data, in_order=True)  # the hub log, in sequence
                except VelocityError as exc:
                    self.invalid[guid] = exc.message
                    continue
                conf = confirming.get(guid)
                if conf is None:
                    base = confirmed.get(guid, held.get(guid))
                    conf = confirming[guid] = self._confirmed_docs.take(
                        doc.collection, doc.record_id, guid, base)
                conf.apply(data, in_order=True)
                states.pop(guid, None)
                touched[guid] = doc
            for guid, conf in confirming.items():
                confirmed[guid] = conf.encode_state()
                self._confirmed_docs.keep(guid, conf, confirmed[guid])
            await self._save_many([(doc, states.get(guid) or doc.encode_state(), confirmed[guid])
                                   for guid, doc in touched.items()])
            for guid in removed:
                dirty.add(guid)
                await self._drop(guid)
            await self.set_meta("cursor", str(cursor))
        return len(touched)

    async def _drop(self, guid: str) -> None:
        """Forget a document that left this device's scope, with its unsent changes."""
        doc = self._docs.pop(guid, None)
        self.invalid.pop(guid, None)
        async with self.db.execute("SELECT update_id FROM edge_outbox WHERE guid = ?",
                                   (guid,)) as cur:
            unsent = [row[0] for row in await cur.fetchall()]
        await self.db.execute("DELETE FROM edge_outbox WHERE guid = ?", (guid,))
        await self.db.execute("DELETE FROM edge_documents WHERE guid = ?", (guid,))
        coll_name, record_id = split_guid(guid)
        await self.db.execute(f"DELETE FROM temp.{collection(coll_name).table} WHERE id = ?",
                              (record_id,))
        if doc is not None and unsent:
            await self.db.executemany(
                "INSERT OR REPLACE INTO edge_refusals (update_id, guid, reason, message) "
                "VALUES (?, ?, 'left_scope', ?)",
                [(u, guid, "reassigned to another broker: this device no longer holds it, "
                  "and its unsent changes were not kept") for u in unsent])

    async def _confirmed_many(self, guids: set[str]) -> dict[str, bytes]:
        """Confirmed states of ``guids`` (those that have one), read in chunks."""
        out: dict[str, bytes] = {}
        ordered = sorted(guids)
        for i in range(0, len(ordered), 500):
            chunk = ordered[i:i + 500]
            async with self.db.execute(
                f"SELECT guid, confirmed FROM edge_documents WHERE guid IN "
                f"({','.join('?' * len(chunk))}) AND confirmed IS NOT NULL", chunk,
            ) as cur:
                for guid, blob in await cur.fetchall():
                    out[guid] = self._sealer.open(blob, guid)
        return out

    async def _save_many(self, saves: Sequence[tuple[RecordDoc, bytes, bytes]]) -> None:
        """Store documents (document, state, confirmed state) and refresh their projection
        rows, one statement per table for the whole batch."""
        await self.db.executemany(_SAVE_SQL, [
            (doc.guid, doc.collection.name, self._sealer.seal(state, doc.guid),
             self._sealer.seal(conf, doc.guid)) for doc, state, conf in saves])
        await self._project_many(doc for doc, _, _ in saves)

    async def _reload(self, guids: Iterable[str]) -> None:
        """Replace the in-memory documents of ``guids`` with what is on disk."""
        for guid in guids:
            self._docs.pop(guid, None)
            async with self.db.execute("SELECT state FROM edge_documents WHERE guid = ?",
                                       (guid,)) as cur:
                row = await cur.fetchone()
            if row:
                coll_name, record_id = split_guid(guid)
                self._docs[guid] = RecordDoc(collection(coll_name), record_id,
                                             client_id=self.client_id,
                                             state=self._sealer.open(row[0], guid))

    async def acknowledge(self, update_ids: Sequence[str]) -> None:
        """The hub committed these: fold them into confirmed state and drop them from the outbox.
        """
        if not update_ids:
            return
        marks = ",".join("?" * len(update_ids))
        async with self._transaction():
            async with self.db.execute(
                f"SELECT guid, data FROM edge_outbox WHERE update_id IN ({marks}) "
                "ORDER BY position", tuple(update_ids),
            ) as cur:
                rows = await cur.fetchall()
            confirmed: dict[str, RecordDoc] = {}
            for guid, data in rows:
                if guid not in confirmed:
                    coll_name, record_id = split_guid(guid)
                    confirmed[guid] = self._confirmed_docs.take(
                        collection(coll_name), record_id, guid, await self._confirmed(guid))
                confirmed[guid].apply(self._sealer.open(data, guid), in_order=True)
            for guid, conf in confirmed.items():
                state = conf.encode_state()
                self._confirmed_docs.keep(guid, conf, state)
                await self.db.execute("UPDATE edge_documents SET confirmed = ? WHERE guid = ?",
                                      (self._sealer.seal(state, guid), guid))
            await self.db.execute(f"DELETE FROM edge_outbox WHERE update_id IN ({marks})",
                                  tuple(update_ids))

    async def refuse(self, update_id: str, guid: str, reason: str, message: str
                     ) -> Refusal:
        """Handle the hub's refusal of one pushed update; never loses an acknowledged write.

        A retryable refusal (the hub's own trouble), or a refusal of an update that only
        continues an earlier one still waiting in the outbox, keeps the update as it is under a
        new id (the hub's verdict on an id is final): it is pushed again. A gap with nothing
        earlier waiting (its predecessor has landed since, or the clocks went astray) rebuilds
        the document as below but re-makes the refused change too: it was never judged on its
        content. Any other refusal is final: the document is rebuilt from confirmed state, its
        earlier pending updates kept byte for byte (they may be committed already) and every
        later one re-made as a new update; the refusal is recorded with the fields it tried to
        change. A later change that cannot stand without the refused one is recorded as refused
        too, never dropped silently.
        """
        async with self._transaction() as dirty:
            async with self.db.execute(
                "SELECT position, update_id, data FROM edge_outbox WHERE guid = ? "
                "ORDER BY position", (guid,),
            ) as cur:
                entries = [(n, u, self._sealer.open(d, guid)) for n, u, d in await cur.fetchall()]
            index = next((i for i, (_, u, _) in enumerate(entries) if u == update_id), None)
            if index is None:
                return Refusal(RefusalKind.IGNORED)
            position = entries[index][0]
            if reason in p.RETRYABLE_REASONS or (reason in p.DEPENDENT_REASONS and index > 0):
                await self.db.execute("UPDATE edge_outbox SET update_id = ? WHERE position = ?",
                                      (new_id(), position))
                return Refusal(RefusalKind.RETRY, position)
            dirty.add(guid)
            await self._rebuild(guid, entries, index, reason, message,
                                keep_refused=reason in p.DEPENDENT_REASONS)
        return Refusal(RefusalKind.REBUILT, position)

    async def _rebuild(self, guid: str, entries: list[tuple[int, str, bytes]], index: int,
                       reason: str, message: str, *, keep_refused: bool) -> None:
        coll_name, record_id = split_guid(guid)
        coll = collection(coll_name)
        confirmed = await self._confirmed(guid)
        rebuilt = RecordDoc(coll, record_id, client_id=self.client_id, state=confirmed)
        replay = RecordDoc(coll, record_id, state=confirmed)  # the original chain
        refusals: list[tuple[str, str, str, str]] = []
        for n, (_, uid, data) in enumerate(entries):
            before = replay.content()
            replay.apply(data)
            if n < index:
                rebuilt.apply(data)  # kept as sent
                continue
            changed = _changed_fields(coll, before, replay.content())
            if n == index and not keep_refused:
                refusals.append((uid, reason, message, _describe(changed)))
                await self.db.execute("DELETE FROM edge_outbox WHERE update_id = ?", (uid,))
                continue
            await self.db.execute("DELETE FROM edge_outbox WHERE update_id = ?", (uid,))
            if not changed:
                continue
            try:
                update = rebuilt.write(_rebased(coll, rebuilt.content(), before, changed))
            except RecordInvalid as exc:
                refusals.append((uid, "depends_on_refused",
                                 f"needs the refused change {entries[index][1]}: {exc.message}",
                                 _describe(changed)))
                continue
            await self.db.execute(
                "INSERT INTO edge_outbox (update_id, guid, data) VALUES (?, ?, ?)",
                (new_id(), guid, self._sealer.seal(update, guid)))
        self._docs[guid] = rebuilt
        await self._save(rebuilt)
        if rebuilt.is_empty:
            await self.db.execute(f"DELETE FROM temp.{coll.table} WHERE id = ?", (record_id,))
            await self.db.execute("DELETE FROM edge_documents WHERE guid = ?", (guid,))
        else:
            await self._project(rebuilt)
        await self.db.executemany(
            "INSERT OR REPLACE INTO edge_refusals (update_id, guid, reason, message, fields) "
            "VALUES (?, ?, ?, ?, ?)", [(u, guid, r, m, f) for u, r, m, f in refusals])

    async def refusals(self) -> list[dict[str, Any]]:
        """What the hub refused (newest first): the record, the reason, and the field values
        the refused change tried to set."""
        async with self.db.execute(
            "SELECT update_id, guid, reason, message, fields, at FROM edge_refusals "
            "ORDER BY at DESC, rowid DESC"
        ) as cur:
            rows = await cur.fetchall()
        keys = ("update_id", "guid", "reason", "message", "fields", "at")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for refusal in out:
            refusal["fields"] = json.loads(refusal["fields"] or "{}")
        return out

    # --- queries ----------------------------------------------------------------------------

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Read the in-memory projection (SQL written by this package, never by a caller)."""
        try:
            async with self.db.execute(sql, tuple(params)) as cur:
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
        except sqlite3.Error as exc:
            failure = storage_error(exc)
            if failure is None:
                raise
            self.storage_error = failure.message
            raise failure from exc


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _changed_fields(coll: Collection, before: dict[str, Any], after: dict[str, Any]
                    ) -> dict[str, Any]:
    return {k: after.get(k) for k in coll.kinds if before.get(k) != after.get(k)}


def _rebased(coll: Collection, current: dict[str, Any], before: dict[str, Any],
             changed: dict[str, Any]) -> dict[str, Any]:
    """A later change re-made on the rebuilt document: registers and lists take their new
    value; a text takes the same edits, placed on the text as it now stands (without the
    refused change), so a refused edit of the same text does not come back with it."""
    out = dict(changed)
    for name, value in changed.items():
        if coll.kinds[name] is CrdtKind.TEXT:
            out[name] = _rebase_text(str(before.get(name) or ""), str(value or ""),
                                     str(current.get(name) or ""))
    return out


def _rebase_text(before: str, after: str, now: str) -> str:
    """Apply the edits that turned ``before`` into ``after`` to ``now`` (a three-way merge
    at character level: positions in ``before`` are carried over to ``now``)."""
    alignment = SequenceMatcher(None, before, now, autojunk=False).get_opcodes()

    def carried(i: int) -> int:
        for tag, a1, a2, b1, b2 in alignment:
            if a1 <= i <= a2 and (i < a2 or a1 == a2 or tag == "equal"):
                return b1 + (i - a1) if tag == "equal" else (b1 if i == a1 else b2)
        return len(now)

    edits = SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(edits):
        if tag != "equal":
            start, end = carried(i1), max(carried(i1), carried(i2))
            now = now[:start] + after[j1:j2] + now[end:]
    return now


def _describe(changed: dict[str, Any]) -> str:
    """The field values a change tried to set, as JSON for the person (long texts cut)."""
    return json.dumps({k: v[:200] if isinstance(v, str) else v for k, v in changed.items()},
                      default=str)


async def _upsert_many(db: aiosqlite.Connection, coll: Collection,
                       rows: Sequence[dict[str, Any]]) -> None:
    types = column_types(coll)
    cols = list(types)
    await db.executemany(
        f"INSERT OR REPLACE INTO temp.{coll.table} ({', '.join(cols)}) "
        f"VALUES ({', '.join('?' * len(cols))})",
        [[json.dumps(row.get(c)) if types[c] == "json" else row.get(c) for c in cols]
         for row in rows],
    )
