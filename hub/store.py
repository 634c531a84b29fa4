"""The hub's durable log on PostgreSQL: append-only updates, merged documents, projections.

Cursor rule: every commit takes the tenant's sequence counter row (``SELECT ... FOR UPDATE`` or
``UPDATE hub_tenants SET last_seq = ...``) before it writes, and holds that row lock until it
commits. So within a tenant, sequence numbers become visible in exactly the order they were
assigned, and a reader that reads ``last_seq`` first and then the rows up to it can never skip one
that commits late. The same lock makes receipts exact: a commit reads them under it.

The log row is the record of truth: it holds the device's update id (its receipt: a unique key on
tenant, device and update id) and is the audit entry of the write (``audit_id`` from the audit
log's sequence). Refused update ids keep their refusal in ``hub_refusals``.

A document's stored state may be a checkpoint with its log rows after it (`hub.storage.
checkpoints`): every read of a state here applies them, in the same statement as the row.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from core.errors import NotFound, PermissionDenied, RecordInvalid
from core.identity import Principal
from core.ids import split_guid
from hub.database import Database
from hub.policy import check_names, check_write, named_guids
from hub.scope import may_read, readers_of, scope_sql
from hub.storage.checkpoints import (
    CHECKPOINT_ROWS,
    STATE_SQL,
    TAIL_SQL,
    checkpoint_behind,
    materialize,
    state_of,
)
from schema import collection, to_row
from schema.ddl import column_types
from schema.models import Record
from sync.protocol import MAX_MESSAGE_CHARS
from sync.record import EMPTY_UPDATE, RecordDoc

NOTIFY_CHANNEL = "velocity_updates"


@dataclass(frozen=True, slots=True)
class Document:
    tenant_id: str
    guid: str
    collection: str
    owner_id: str | None
    team_id: str | None
    state: bytes
    updated_seq: int
    scope_seq: int


@dataclass(eq=False, slots=True)
class Version:
    """A state of a document that changes were judged on (compared by identity): ``seq`` is
    the stored sequence at which the document is exactly this state, once known (a state
    loaded from the store, or one a commit wrote from a change judged on it)."""

    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Judged:
    """What applying a change to its ``base`` gave: the state's version, the record, and the
    state's bytes where the judge had them at hand (else the commit appends to the tail)."""

    version: Version
    record: Record
    state: bytes | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One validated update to commit; ``update_id`` is the device's id for exactly-once."""

    guid: str
    update: bytes
    update_id: str | None = None
    base: Version | None = None
    """The document state the update was judged on, when ``after`` says what it led to."""
    after: Judged | None = None
    """What applying the update to ``base`` gave: a commit that finds the document at exactly
    ``base`` takes it instead of applying the update again."""


@dataclass(frozen=True, slots=True)
class PushGroup:
    """One device's push batch (or the hub's own writes) within a group commit."""

    changes: Sequence[Change]
    user_id: str | None
    device_id: str | None
    principal: Principal | None = None
    """Whose changes the gate judged; a change applied again on a newer state is judged again."""


class Unstorable(RecordInvalid):
    """PostgreSQL refused to store a change alone (a value it cannot hold); the validator
    should have refused it first."""

    code = "unstorable"


NotCommitted = RecordInvalid | PermissionDenied
"""Why a change did not commit: its record does not validate, (applied again on a state that
changed after the gate judged it) its author may no longer make it, PostgreSQL cannot store it,
or its update id was refused before."""


@dataclass(frozen=True, slots=True)
class RefusalReceipt:
    """A device's update id the hub refused, for good: the reason and message it was given."""

    guid: str
    reason: str
    message: str

    def error(self) -> NotCommitted:
        """The refusal as the error it was (its code and message)."""
        error = RecordInvalid(self.message)
        error.code = self.reason
        return error


Receipt = int | RefusalReceipt
"""What a device's update id got, for good: the sequence it committed at, or its refusal."""


@dataclass(frozen=True, slots=True)
class Committed:
    guid: str
    seq: int
    record: Record | None
    duplicate: bool = False
    previous: int | None = None
    """The document's sequence just before this change (0: it is new; None: not known)."""


@dataclass(frozen=True, slots=True)
class LogItem:
    seq: int
    guid: str
    data: bytes
    snapshot: bool
    removed: bool = False
    """The document left the reader's scope (reassigned away): the device drops it."""
    origin: str | None = field(default=None, compare=False)
    """The device that pushed the update, where the reader was told it (`LogFeed.read` with
    ``with_own``)."""


def _doc(row: asyncpg.Record) -> Document:
    return Document(
        row["tenant_id"], row["guid"], row["collection"], row["owner_id"], row["team_id"],
        state_of(row), row["updated_seq"], row["scope_seq"],
    )


_DOCUMENT_SELECT = ("SELECT d.tenant_id, d.collection, d.owner_id, d.team_id, d.updated_seq, "
                    f"d.scope_seq, {STATE_SQL} FROM hub_documents d ")


class HubStore:
    """All reads and writes of the log, documents and projections for one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def document(self, tenant_id: str, guid: str) -> Document | None:
        row = await self.db.pool.fetchrow(
            _DOCUMENT_SELECT + "WHERE d.tenant_id = $1 AND d.guid = $2", tenant_id, guid)
        return _doc(row) if row else None

    async def documents(self, tenant_id: str, guids: Sequence[str]) -> dict[str, Document]:
        """The stored documents among ``guids`` (one query)."""
        rows = await self.db.pool.fetch(
            _DOCUMENT_SELECT + "WHERE d.tenant_id = $1 AND d.guid = ANY($2::text[])",
            tenant_id, list(guids))
        return {r["guid"]: _doc(r) for r in rows}

    async def document_heads(self, tenant_id: str, guids: Sequence[str]
                             ) -> tuple[dict[str, int], int]:
        """The latest sequence of each stored document among ``guids`` (no state), and the
        tenant's compaction horizon (one query)."""
        rows = await self.db.pool.fetch(
            "SELECT d.guid, d.updated_seq, t.horizon FROM hub_tenants t LEFT JOIN hub_documents d "
            "ON d.tenant_id = t.tenant_id AND d.guid = ANY($2::text[]) WHERE t.tenant_id = $1",
            tenant_id, list(guids))
        if not rows:
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        return ({r["guid"]: r["updated_seq"] for r in rows if r["guid"] is not None},
                rows[0]["horizon"])

    async def log_rows(self, tenant_id: str, ranges: Mapping[str, tuple[int, int]]
                       ) -> dict[str, list[tuple[int, bytes]]]:
        """The logged updates of each document in its range of sequences (after, upto], in
        order (one query)."""
        rows = await self.db.pool.fetch(
            "SELECT u.guid, u.seq, u.data FROM unnest($2::text[], $3::bigint[], $4::bigint[]) "
            "AS w(guid, after, upto) JOIN hub_updates u ON u.tenant_id = $1 AND u.guid = w.guid "
            "AND u.seq > w.after AND u.seq <= w.upto ORDER BY u.seq",
            tenant_id, list(ranges), [a for a, _ in ranges.values()],
            [b for _, b in ranges.values()])
        out: dict[str, list[tuple[int, bytes]]] = {guid: [] for guid in ranges}
        for r in rows:
            out[r["guid"]].append((r["seq"], bytes(r["data"])))
        return out

    async def receipts(self, tenant_id: str, device_id: str, update_ids: Sequence[str]
                       ) -> dict[str, Receipt]:
        """What earlier pushes of these update ids got, by update id (one query)."""
        async with self.db.pool.acquire() as conn:
            found = await _receipts(conn, tenant_id, [(device_id, u) for u in update_ids])
        return {update_id: receipt for (_, update_id), receipt in found.items()}

    async def record_refusals(self, tenant_id: str, device_id: str,
                              refusals: Sequence[tuple[str, RefusalReceipt]]
                              ) -> dict[str, Receipt]:
        """Record refusals of update ids for good; returns what each id holds now (an id a
        concurrent session of the device got a receipt for first keeps that one).

        Holds the tenant's sequence row in share mode, so no commit of the tenant runs
        meanwhile: an id is either in the log or refused, never both."""
        if not refusals:
            return {}
        async with self.db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM hub_tenants WHERE tenant_id = $1 FOR SHARE", tenant_id)
            await conn.executemany(
                "INSERT INTO hub_refusals (tenant_id, device_id, update_id, guid, reason, "
                "message) SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM "
                "hub_updates WHERE tenant_id = $1 AND device_id = $2 AND update_id = $3) "
                "ON CONFLICT DO NOTHING",
                [(tenant_id, device_id, uid, r.guid, r.reason, r.message) for uid, r in refusals])
            found = await _receipts(conn, tenant_id, [(device_id, uid) for uid, _ in refusals])
        return {update_id: receipt for (_, update_id), receipt in found.items()}

    async def commit(
        self, tenant_id: str, changes: Sequence[Change], *, user_id: str | None,
        device_id: str | None, principal: Principal | None = None,
    ) -> list[Committed | NotCommitted]:
        """Append changes in one transaction; each result is committed or refused."""
        group = PushGroup(changes, user_id, device_id, principal)
        return (await self.commit_groups(tenant_id, [group]))[0]

    async def commit_groups(
        self, tenant_id: str, groups: Sequence[PushGroup]
    ) -> list[list[Committed | NotCommitted]]:
        """Append the push batches of several devices of one tenant in one transaction (group
        commit); each change's result is committed or refused.

        Each update is applied to the document's current merged state inside the transaction
        (after the tenant lock), so concurrent writers to one document never overwrite each other;
        a change the gate judged on exactly that state brings its result along and is not
        applied twice. Every statement is batched: a transaction costs a fixed number of round
        trips. When PostgreSQL refuses a value, the transaction is made again with each batch
        under a savepoint of its own, and a failing batch change by change, so one change never
        fails another's commit (`Unstorable`).
        """
        try:
            return await self._commit_groups(tenant_id, groups, per_batch=False)
        except _STORE_REFUSALS:
            return await self._commit_groups(tenant_id, groups, per_batch=True)

    async def _commit_groups(
        self, tenant_id: str, groups: Sequence[PushGroup], *, per_batch: bool
    ) -> list[list[Committed | NotCommitted]]:
        flat = [(g, ch) for g, group in enumerate(groups) for ch in group.changes]
        results: list[Committed | NotCommitted | tuple[int, int] | None] = [None] * len(flat)
        taken: list[tuple[Version, int]] = []
        async with self.db.pool.acquire() as conn, conn.transaction():
            last = await conn.fetchval(
                "SELECT last_seq FROM hub_tenants WHERE tenant_id = $1 FOR UPDATE", tenant_id)
            if last is None:
                raise NotFound(f"tenant {tenant_id!r} does not exist")
            # Read under the tenant's lock: no other commit can add a receipt meanwhile.
            keys = [(groups[g].device_id, ch.update_id) for g, ch in flat]
            held = await _receipts(conn, tenant_id, [k for k in keys if None not in k])
            todo: list[int] = []
            first_of: dict[tuple[str | None, str | None], int] = {}
            for i, ((_, ch), key) in enumerate(zip(flat, keys, strict=True)):
                receipt = held.get(key)  # type: ignore[arg-type]
                if isinstance(receipt, RefusalReceipt):
                    results[i] = receipt.error()  # refused before: refused for good
                elif receipt is not None:
                    results[i] = Committed(ch.guid, receipt, None, duplicate=True)
                elif None not in key and key in first_of:
                    results[i] = (first_of[key], 0)  # a duplicate within this transaction
                else:
                    todo.append(i)
                    if None not in key:
                        first_of[key] = i
            if todo:
                entries = [(i, flat[i][1], groups[flat[i][0]]) for i in todo]
                appender = _Appender(conn, tenant_id, last)
                if per_batch:
                    written = []
                    for g in range(len(groups)):
                        written += await appender.batch(
                            [e for e in entries if flat[e[0]][0] == g])
                else:  # a value PostgreSQL refuses fails the transaction: see commit_groups
                    written = await appender.write(entries)
                for i, result in written:
                    results[i] = result
                taken = appender.taken
                top = max((r.seq for _, r in written if isinstance(r, Committed)), default=0)
                if top:
                    await conn.execute(
                        "WITH counter AS (UPDATE hub_tenants SET last_seq = $2 WHERE "
                        "tenant_id = $1) SELECT pg_notify($3, $4)",
                        tenant_id, top, NOTIFY_CHANNEL, f"{tenant_id}:{top}")
        for version, seq in taken:  # committed: the stored document is at these versions
            version.seq = seq
        out: list[list[Committed | NotCommitted]] = [[] for _ in groups]
        for i, result in enumerate(results):
            if isinstance(result, tuple):  # same outcome as its first
                result = results[result[0]]
                if isinstance(result, Committed):
                    result = Committed(flat[i][1].guid, result.seq, None, duplicate=True)
            assert isinstance(result, Committed | NotCommitted)
            out[flat[i][0]].append(result)
        return out

    # --- reading the log --------------------------------------------------------------------

    async def high_water(self, tenant_id: str) -> tuple[int, int]:
        """(last committed sequence, compaction horizon) of a tenant."""
        row = await self.db.pool.fetchrow(
            "SELECT last_seq, horizon FROM hub_tenants WHERE tenant_id = $1", tenant_id
        )
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        return row["last_seq"], row["horizon"]

    async def read_updates(
        self, principal: Principal, cursor: int, limit: int, *, last: int | None = None
    ) -> tuple[list[LogItem], int]:
        """Updates after ``cursor`` up to ``last`` (default: the tenant's high-water mark, read
        first) the principal may read, and the cursor to resume from.

        A document whose read scope changed after the cursor (new, or reassigned to this reader)
        comes as one snapshot instead of its updates, so the reader gets its whole history.
        """
        if last is None:
            last, _ = await self.high_water(principal.tenant_id)
        if last <= cursor:
            return [], cursor
        cond, params = scope_sql(principal, "d", 6)
        before, _ = scope_sql(principal, "d", 6, previous=True)
        # Only rows that can become an item leave the database: readable rows of a document
        # whose scope changed after the cursor (a snapshot) or readable updates the reader's own
        # device did not make, and rows of a document that left the reader's scope after the
        # cursor (a remove). A broker's device among many reads its own share of the log.
        rows = await self.db.pool.fetch(
            "SELECT u.seq, u.guid, u.data, u.device_id, d.scope_seq, d.collection, "
            "CASE WHEN d.scope_seq > $2 THEN d.state END AS state, "  # only snapshots need it
            f"CASE WHEN d.scope_seq > $2 THEN {TAIL_SQL} END AS tail, "
            f"d.prev_owner_id, d.prev_team_id, d.prev_readers, ({cond}) AS visible "
            "FROM hub_updates u JOIN hub_documents d "
            "ON d.tenant_id = u.tenant_id AND d.guid = u.guid "
            f"WHERE u.tenant_id = $1 AND u.seq > $2 AND u.seq <= $3 AND (CASE WHEN {cond} "
            "THEN d.scope_seq > $2 OR $5::text IS NULL OR u.device_id IS DISTINCT FROM $5 "
            f"ELSE d.scope_seq > $2 AND {before} END) "
            "ORDER BY u.seq LIMIT $4",
            principal.tenant_id, cursor, last, limit, principal.device_id, *params,
        )
        items: list[LogItem] = []
        snapshotted: set[str] = set()
        for r in rows:
            if r["guid"] in snapshotted:
                continue
            item = log_item(principal, cursor, r["seq"], r["guid"], visible=r["visible"],
                            collection=r["collection"], prev_owner_id=r["prev_owner_id"],
                            prev_team_id=r["prev_team_id"], prev_readers=r["prev_readers"],
                            scope_seq=r["scope_seq"],
                            state=r["state"], tail=r["tail"], data=r["data"],
                            origin=r["device_id"])
            if item is not None:
                if item.snapshot or item.removed:  # it stands for the document's history
                    snapshotted.add(item.guid)
                items.append(item)
        new_cursor = rows[-1]["seq"] if len(rows) == limit else last
        return items, new_cursor

    async def read_removals(self, principal: Principal, cursor: int) -> list[LogItem]:
        """Documents the principal could read before a scope change after ``cursor`` (any of
        them: the scope history) and no longer can: a device resyncing by snapshots, or coming
        back after reassignments it missed, drops them (snapshots only say what is in)."""
        if principal.is_manager:
            return []
        now, params = scope_sql(principal, "d", 3)
        before, _ = scope_sql(principal, "d", 3, previous=True)
        then, _ = scope_sql(principal, "h", 3)
        rows = await self.db.pool.fetch(
            "SELECT d.guid, d.scope_seq FROM hub_documents d WHERE d.tenant_id = $1 "
            f"AND d.scope_seq > $2 AND NOT {now} AND ({before} OR EXISTS (SELECT 1 FROM "
            "hub_scope_history h WHERE h.tenant_id = d.tenant_id AND h.guid = d.guid AND "
            f"h.seq > $2 AND {then})) ORDER BY d.scope_seq",
            principal.tenant_id, cursor, *params,
        )
        return [LogItem(r["scope_seq"], r["guid"], b"", False, removed=True) for r in rows]

    async def read_out_of_scope(self, principal: Principal) -> list[LogItem]:
        """A `remove` item for every document the principal may not read (a device whose user's
        role or team changed drops what it held under the old scope; others ignore them)."""
        if principal.is_manager:
            return []
        cond, params = scope_sql(principal, "d", 2)
        rows = await self.db.pool.fetch(
            "SELECT d.guid, d.updated_seq FROM hub_documents d WHERE d.tenant_id = $1 "
            f"AND NOT {cond} ORDER BY d.guid", principal.tenant_id, *params)
        return [LogItem(r["updated_seq"], r["guid"], b"", False, removed=True) for r in rows]

    async def count_in_scope(self, principal: Principal) -> int:
        """How many documents a bootstrap of ``principal`` sends."""
        cond, params = scope_sql(principal, "d", 2)
        return int(await self.db.pool.fetchval(
            f"SELECT count(*) FROM hub_documents d WHERE d.tenant_id = $1 AND {cond}",
            principal.tenant_id, *params))

    async def read_snapshots(
        self, principal: Principal, after_guid: str, limit: int
    ) -> list[LogItem]:
        """Snapshots of every document in scope, paged by guid (bootstrap, or behind horizon)."""
        cond, params = scope_sql(principal, "d", 4)
        rows = await self.db.pool.fetch(
            f"SELECT d.updated_seq, {STATE_SQL} FROM hub_documents d "
            f"WHERE d.tenant_id = $1 AND d.guid > $2 AND {cond} ORDER BY d.guid LIMIT $3",
            principal.tenant_id, after_guid, limit, *params,
        )
        return [LogItem(r["updated_seq"], r["guid"], state_of(r), True) for r in rows]

    async def compact(self, tenant_id: str, horizon: int) -> int:
        """Drop the data of raw updates up to ``horizon`` (their effect lives on in the
        documents' states); readers behind the horizon get snapshots. The rows stay: they are
        the devices' receipts and the audit log. Returns the number of updates dropped."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            last = await conn.fetchval(
                "SELECT last_seq FROM hub_tenants WHERE tenant_id = $1 FOR UPDATE", tenant_id
            )
            horizon = min(horizon, last or 0)
            await checkpoint_behind(conn, tenant_id, horizon)
            status = await conn.execute(
                "UPDATE hub_updates SET data = ''::bytea WHERE tenant_id = $1 AND seq <= $2 "
                "AND data <> ''::bytea", tenant_id, horizon)
            await conn.execute(
                "UPDATE hub_tenants SET horizon = GREATEST(horizon, $2) WHERE tenant_id = $1",
                tenant_id, horizon,
            )
        return int(status.split()[-1])


def log_item(
    principal: Principal, cursor: int, seq: int, guid: str, *, visible: bool, collection: str,
    prev_owner_id: str | None, prev_team_id: str | None, scope_seq: int, state: bytes | None,
    data: bytes, origin: str | None, prev_readers: Sequence[str] | None = None,
    tail: Sequence[bytes] | None = None,
) -> LogItem | None:
    """What a reader at ``cursor`` receives for one log row (None: nothing), judged on the
    row's document as it is now: a document that left the reader's scope after the cursor
    comes as a removal, one whose scope changed after it as a snapshot (``state`` is needed
    then, with the ``tail`` of log rows after it), otherwise the update, unless the reader's own
    device made it."""
    if not visible:
        if scope_seq > cursor and may_read(principal, collection, prev_owner_id, prev_team_id,
                                           prev_readers):
            return LogItem(seq, guid, b"", False, removed=True)  # readable before reassignment
        return None
    if scope_seq > cursor:
        assert state is not None
        return LogItem(seq, guid, materialize(guid, state, tail), snapshot=True)
    if principal.device_id is None or origin != principal.device_id:
        return LogItem(seq, guid, bytes(data), snapshot=False)
    return None


async def _receipts(
    conn: asyncpg.Connection, tenant_id: str, keys: Sequence[tuple[str | None, str | None]]
) -> dict[tuple[str | None, str | None], Receipt]:
    """(device id, update id) → what it got, for the keys already answered for good: the
    sequence of its log row, or its refusal."""
    if not keys:
        return {}
    rows = await conn.fetch(
        "WITH k AS (SELECT * FROM unnest($2::text[], $3::text[]) AS k(device_id, update_id)) "
        "SELECT device_id, update_id, seq, NULL AS guid, NULL AS reason, NULL AS message "
        "FROM hub_updates WHERE tenant_id = $1 AND (device_id, update_id) IN (SELECT * FROM k) "
        "UNION ALL SELECT device_id, update_id, NULL, guid, reason, message FROM hub_refusals "
        "WHERE tenant_id = $1 AND (device_id, update_id) IN (SELECT * FROM k)",
        tenant_id, [k[0] for k in keys], [k[1] for k in keys],
    )
    # a log row wins (committed is committed), though the tenant's lock keeps an id in one place
    return {(r["device_id"], r["update_id"]):
            r["seq"] if r["seq"] is not None else RefusalReceipt(r["guid"], r["reason"],
                                                                 r["message"])
            for r in sorted(rows, key=lambda r: r["seq"] is not None)}


_STORE_REFUSALS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError,
                   asyncpg.ProgramLimitExceededError)
"""What PostgreSQL raises for values it cannot store (NUL in text, numbers out of range…):
the fault of the change written, not of the transaction."""

_Entry = tuple[int, Change, PushGroup]
"""A change to append: its index in the commit's results, the change, its push batch."""


class _Appender:
    """Appends changes inside a transaction that holds the tenant's sequence row, handing out
    the sequence numbers after ``last``; a savepoint that PostgreSQL refuses hands its numbers
    out again."""

    def __init__(self, conn: asyncpg.Connection, tenant_id: str, last: int) -> None:
        self.conn, self.tenant_id, self.last = conn, tenant_id, last
        self.taken: list[tuple[Version, int]] = []
        """Judged versions the written changes took, with their sequences (`write_changes`)."""

    async def write(self, entries: Sequence[_Entry]
                    ) -> list[tuple[int, Committed | NotCommitted]]:
        """Append ``entries``; (index, result) per entry."""
        first = self.last + 1
        taken: list[tuple[Version, int]] = []
        written = await write_changes(self.conn, self.tenant_id, [
            _Pending(ch, first + n, group.user_id, group.device_id, group.principal)
            for n, (_, ch, group) in enumerate(entries)], taken)
        self.last += len(entries)
        self.taken += taken
        return [(i, result) for (i, _, _), result in zip(entries, written, strict=True)]

    async def isolated(self, entries: Sequence[_Entry]
                       ) -> list[tuple[int, Committed | NotCommitted]]:
        """`write` under a savepoint (a refused value rolls back only these entries)."""
        async with self.conn.transaction():
            return await self.write(entries)

    async def batch(self, entries: Sequence[_Entry]
                    ) -> list[tuple[int, Committed | NotCommitted]]:
        """One push batch under its own savepoint; if PostgreSQL refuses it, each change under
        its own, and a change it refuses alone is refused as `Unstorable` (recorded for good)."""
        if not entries:
            return []
        try:
            return await self.isolated(entries)
        except _STORE_REFUSALS:
            pass
        out: list[tuple[int, Committed | NotCommitted]] = []
        for entry in entries:
            try:
                out += await self.isolated([entry])
            except _STORE_REFUSALS as exc:
                i, change, group = entry
                refusal = Unstorable(
                    f"{change.guid}: the hub cannot store this change ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); remove the offending value and save again")
                out.append((i, refusal))
                with contextlib.suppress(*_STORE_REFUSALS):  # an id it cannot store either
                    async with self.conn.transaction():
                        await _record_refused(self.conn, self.tenant_id, group, change,
                                              refusal)
        return out


async def _record_refused(conn: asyncpg.Connection, tenant_id: str, group: PushGroup,
                          change: Change, refusal: NotCommitted) -> None:
    """The audit entry of a refusal, and its receipt when the change has an update id."""
    if change.update_id is not None and group.device_id is not None:
        await conn.execute(
            "INSERT INTO hub_refusals (tenant_id, device_id, update_id, guid, reason, message) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            tenant_id, group.device_id, change.update_id, change.guid, refusal.code,
            refusal.message[:MAX_MESSAGE_CHARS])
    await conn.execute(
        "INSERT INTO hub_audit (tenant_id, user_id, device_id, action, guid, seq, detail) "
        "VALUES ($1, $2, $3, 'refused', $4, NULL, $5)", tenant_id, group.user_id,
        group.device_id, change.guid, {"reason": refusal.code, "message": refusal.message})


class _Unseen(Exception):
    """A change names a record whose scope the commit has not read yet."""

    def __init__(self, guid: str) -> None:
        super().__init__(guid)
        self.guid = guid


async def _scopes(conn: asyncpg.Connection, tenant_id: str, guids: set[str]
                  ) -> dict[str, Mapping[str, Any] | None]:
    """``owner_id``, ``team_id`` and ``readers`` of each of ``guids`` (None: no such
    document)."""
    if not guids:
        return {}
    rows = await conn.fetch(
        "SELECT guid, owner_id, team_id, readers FROM hub_documents WHERE tenant_id = $1 AND "
        "guid = ANY($2::text[])", tenant_id, sorted(guids))
    found: dict[str, Mapping[str, Any] | None] = dict.fromkeys(guids)
    found |= {r["guid"]: {k: r[k] for k in ("owner_id", "team_id", "readers")} for r in rows}
    return found


@dataclass(slots=True)
class _Pending:
    change: Change
    seq: int
    user_id: str | None
    device_id: str | None
    principal: Principal | None = None


class _NeedsState(Exception):
    """A change must be applied to the document's state, which the commit has not read."""


_DRAFT_COLUMNS = ("guid, owner_id, team_id, prev_owner_id, prev_team_id, readers, prev_readers, "
                  "created_seq, updated_seq, scope_seq, state_seq, tail_rows")
"""What a commit reads of each document it changes: all but the state (read only when a
change must be applied to it, or to write a checkpoint)."""


class _Draft:
    """A document as a transaction changes it: its state (as far as read) and visibility
    columns."""

    def __init__(self, guid: str, row: asyncpg.Record | None) -> None:
        coll_name, self.record_id = split_guid(guid)
        self.coll = collection(coll_name)
        self.guid = guid
        self.exists = row is not None
        self.owner_id = row["owner_id"] if row else None
        self.team_id = row["team_id"] if row else None
        self.prev_owner_id = row["prev_owner_id"] if row else None
        self.prev_team_id = row["prev_team_id"] if row else None
        self.readers = row["readers"] if row else None
        self.prev_readers = row["prev_readers"] if row else None
        self.created_seq = row["created_seq"] if row else 0
        self.scope_seq = row["scope_seq"] if row else 0
        self.updated_seq = row["updated_seq"] if row else 0
        self.stored_seq = self.updated_seq
        """The sequence the stored row stands at (before this transaction)."""
        self.state_seq: int | None = row["state_seq"] if row else 0
        """Where the stored state column stands (None: exact at ``stored_seq``)."""
        self.tail_rows = row["tail_rows"] if row else 0
        self.new_rows = 0
        """Log rows of the document this transaction appends."""
        self.state: bytes | None = None if row else b""
        """The document's state before ``unapplied`` (None: not read yet)."""
        self.unapplied: list[bytes] = []
        """Updates taken since ``state`` (their result came judged along). Every change taken
        here either brings or makes ``state``, or goes here."""
        self.version: Version | None = None
        """The version the document is at now, where a change judged on one was taken."""
        self.taken: list[tuple[Version, int]] = []
        """Each version taken here, with the sequence it was written at."""
        self.record: Record | None = None
        self.history: list[tuple[int, str | None, str | None, list[str] | None]] = []
        """(seq, owner, team, readers before the change) of each scope change made here."""

    def at(self, base: Version | None) -> bool:
        """Whether the document is exactly at ``base`` now."""
        return base is not None and (base is self.version or (
            self.version is None and not self.new_rows and base.seq == self.stored_seq))

    def current(self) -> RecordDoc:
        """The document as it stands now (its state must have been read)."""
        if self.state is None:
            raise _NeedsState(self.guid)
        doc = RecordDoc(self.coll, self.record_id, state=self.state or None)
        doc.apply_log(self.unapplied)
        return doc

    def apply(self, change: Change, seq: int, tenant_id: str, principal: Principal | None,
              scope: Callable[[str], Mapping[str, Any] | None]) -> Record | NotCommitted:
        """Apply one change; on a refusal (or `_Unseen`: ``scope`` has not read a record the
        change names; `_NeedsState`: the change must be applied to a state not read yet) the
        draft is left as it was."""
        judged = change.after if self.at(change.base) else None
        state: bytes | None = None
        if judged is not None:
            record = judged.record  # judged on exactly this state
        else:
            doc = self.current()
            try:
                before = (to_row(doc.project()) if principal is not None and self.exists
                          else None)
                doc.apply(change.update, in_order=True)  # the gate checked causality
                record = doc.project()
                if principal is not None:  # judged on an older state: judge this one
                    check_write(principal, self.coll, before, to_row(record))
            except (RecordInvalid, PermissionDenied) as exc:
                return exc
            state = doc.encode_state()
        if principal is not None:
            try:
                self._check_names(principal, record, scope)
            except PermissionDenied as exc:
                return exc
        if record.tenant_id != tenant_id:
            return RecordInvalid(f"{self.guid}: tenant_id may not be {record.tenant_id!r}")
        readers = readers_of(self.coll.name, vars(record))
        if not self.exists or (self.owner_id, self.team_id, self.readers) != (
                record.owner_id, record.team_id, readers):
            if self.exists:
                self.prev_owner_id, self.prev_team_id = self.owner_id, self.team_id
                self.prev_readers = self.readers
                self.history.append((seq, self.owner_id, self.team_id, self.readers))
            self.scope_seq = seq
        self.readers = readers
        if not self.exists:
            self.created_seq, self.exists = seq, True
        self.owner_id, self.team_id, self.updated_seq = record.owner_id, record.team_id, seq
        self.record = record
        self.new_rows += 1
        if judged is None:
            self.state, self.unapplied, self.version = state, [], None
        else:
            self.version = judged.version
            self.taken.append((judged.version, seq))
            if judged.state is not None:
                self.state, self.unapplied = judged.state, []
            else:
                self.unapplied.append(change.update)
        return record

    def _check_names(self, principal: Principal, record: Record,
                     scope: Callable[[str], Mapping[str, Any] | None]) -> None:
        """The records the change names (a consent's client and lead) as the policy needs
        them (`check_names`), judged with the document as it stands before the change."""
        guids = named_guids(principal, self.coll.name, vars(record))
        if not guids:
            return
        before = to_row(self.current().project()) if self.exists else None
        check_names(principal, self.coll.name, before, to_row(record),
                    {g: scope(g) for g in guids})

    def checkpoint_due(self) -> bool:
        """Whether the write (of a document a change was taken into) must bring the stored
        state up to date, else its tail grows."""
        # No update waits to be applied: a change brought or made the state, which is at hand.
        return not self.unapplied or self._tail_after() >= CHECKPOINT_ROWS

    def _tail_after(self) -> int:
        """The log rows after the stored checkpoint once this transaction's are appended."""
        return self.new_rows + (self.tail_rows if self.state_seq is not None else 0)

    def row(self) -> DocumentRow:
        """The document row to write: with its state when a checkpoint is due (the state must
        have been read then), else with the stored state kept and its tail longer."""
        if self.checkpoint_due():
            state = (self.state if not self.unapplied and self.state is not None
                     else self.current().encode_state())
            state_seq, tail = None, 0
        else:
            state = b""  # the stored state stays (see _DOCUMENT_UPDATES)
            state_seq = self.state_seq if self.state_seq is not None else self.stored_seq
            tail = self._tail_after()
        return (self.guid, self.coll.name, self.record_id, self.owner_id, self.team_id, state,
                self.created_seq, self.updated_seq, self.scope_seq, self.prev_owner_id,
                self.prev_team_id, self.readers, self.prev_readers, state_seq, tail)

    async def read_state(self, conn: asyncpg.Connection, tenant_id: str) -> None:
        """Read the stored state (checkpoint and tail) as this transaction found it."""
        row = await conn.fetchrow(
            f"SELECT {STATE_SQL} FROM hub_documents d WHERE d.tenant_id = $1 AND d.guid = $2",
            tenant_id, self.guid)
        self.state = state_of(row) if row is not None else b""


async def write_changes(
    conn: asyncpg.Connection, tenant_id: str, pending: Sequence[_Pending],
    taken: list[tuple[Version, int]] | None = None,
) -> list[Committed | NotCommitted]:
    """Inside a transaction that holds the tenant's sequence: apply each change to its
    document, then append the log (one row per update: the record of truth, the device's
    receipt and the audit entry), and write each changed document and projection row once
    (the document's whole state only when a checkpoint is due: `hub.storage.checkpoints`).
    ``taken``: gets each judged version the commit took, with the sequence it is at.

    The documents are read without a row lock: every writer of the log and the documents
    holds the tenant's sequence row first, so no other transaction changes them meanwhile.
    So are the records a change names (`hub.policy.check_names`: a consent's client and lead),
    in one query for what the gate's results name (and one more for a change applied again
    that names another)."""
    rows = await conn.fetch(
        f"SELECT {_DRAFT_COLUMNS} FROM hub_documents WHERE tenant_id = $1 AND "
        "guid = ANY($2::text[])", tenant_id, list({p.change.guid for p in pending}))
    by_guid = {r["guid"]: r for r in rows}
    drafts: dict[str, _Draft] = {}
    named = await _scopes(conn, tenant_id, {
        g for p in pending if p.principal is not None and p.change.after is not None
        for g in named_guids(p.principal, split_guid(p.change.guid)[0],
                             vars(p.change.after.record))})

    def scope(guid: str) -> Mapping[str, Any] | None:
        if guid in drafts:  # as this transaction left it
            d = drafts[guid]
            return ({"owner_id": d.owner_id, "team_id": d.team_id, "readers": d.readers}
                    if d.exists else None)
        if guid not in named:
            raise _Unseen(guid)
        return named[guid]

    results: list[Committed | NotCommitted] = []
    log: list[tuple[str, int, str, bytes, str | None, str | None, str | None]] = []
    refusals, audits = [], []
    for p in pending:
        guid = p.change.guid
        draft = drafts.get(guid) or drafts.setdefault(guid, _Draft(guid, by_guid.get(guid)))
        previous = draft.updated_seq
        while True:
            try:
                outcome = draft.apply(p.change, p.seq, tenant_id, p.principal, scope)
                break
            except _Unseen as unseen:  # judged on a newer state than the gate's: it names more
                named |= await _scopes(conn, tenant_id, {unseen.guid})
            except _NeedsState:
                await draft.read_state(conn, tenant_id)
        receipted = p.change.update_id is not None and p.device_id is not None
        if isinstance(outcome, NotCommitted):
            audits.append((tenant_id, p.user_id, p.device_id, "refused", guid, None,
                           {"reason": outcome.code, "message": outcome.message}))
            if receipted:  # refused for good: a retry of this id gets the same refusal
                refusals.append((tenant_id, p.device_id, p.change.update_id, guid,
                                 outcome.code, outcome.message[:MAX_MESSAGE_CHARS]))
            results.append(outcome)
            continue
        log.append((tenant_id, p.seq, guid, p.change.update, p.device_id, p.user_id,
                    p.change.update_id if receipted else None))
        results.append(Committed(guid, p.seq, outcome, previous=previous))
    written = [d for d in drafts.values() if d.record is not None]
    for d in written:
        if d.checkpoint_due() and d.state is None:
            await d.read_state(conn, tenant_id)
        if taken is not None:
            taken += d.taken
    if log:
        await append_log(conn, log)
    if written:
        await write_documents(conn, tenant_id, [d.row() for d in written])
        by_table: dict[str, list[_Draft]] = {}
        for d in written:
            by_table.setdefault(d.coll.table, []).append(d)
        for table, drafts_of_table in by_table.items():
            types = column_types(drafts_of_table[0].coll)
            await write_projection(conn, table, types, [
                to_row(d.record) for d in drafts_of_table if d.record is not None])
    history = [(tenant_id, d.guid, seq, d.coll.name, owner, team, readers)
               for d in drafts.values() for seq, owner, team, readers in d.history]
    if history:
        await conn.executemany(
            "INSERT INTO hub_scope_history (tenant_id, guid, seq, collection, owner_id, team_id,"
            " readers) VALUES ($1, $2, $3, $4, $5, $6, $7)", history)
    if refusals:
        await conn.executemany(
            "INSERT INTO hub_refusals (tenant_id, device_id, update_id, guid, reason, message) "
            "VALUES ($1, $2, $3, $4, $5, $6)", refusals)
    if audits:
        await conn.executemany(
            "INSERT INTO hub_audit (tenant_id, user_id, device_id, action, guid, seq, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)", audits)
    return results


LOG_COLUMNS = ("tenant_id", "seq", "guid", "data", "device_id", "user_id", "update_id")
COPY_FROM_ROWS = 10
"""From this many log rows on, the append is one COPY instead of a batched INSERT (measured:
see docs/decisions.md, "Hub at scale")."""


async def append_log(conn: asyncpg.Connection,
                     rows: Sequence[tuple[str, int, str, bytes, str | None, str | None,
                                          str | None]]) -> None:
    """Append log rows (``LOG_COLUMNS``, in sequence order; each takes the next audit id)."""
    if len(rows) >= COPY_FROM_ROWS:
        await conn.copy_records_to_table("hub_updates", records=rows, columns=LOG_COLUMNS)
    else:
        await conn.executemany(
            "INSERT INTO hub_updates (tenant_id, seq, guid, data, device_id, user_id, update_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)", rows)


UNNEST_FROM_ROWS = 5
"""From this many rows on, documents and projection rows are written by one statement over
column arrays (``unnest``), below it by a batched INSERT of one row each (measured: see
docs/decisions.md, "Hub at scale")."""

DocumentRow = tuple[str, str, str, str | None, str | None, bytes, int, int, int, str | None,
                    str | None, Sequence[str] | None, Sequence[str] | None, int | None, int]
"""guid, collection, record id, owner, team, state, created, updated and scope sequences,
previous owner and team, readers, previous readers, the state's sequence (None: exact) and the
rows of its tail (`hub.storage.checkpoints`)."""

_DOCUMENT_COLUMNS = ("guid, collection, record_id, owner_id, team_id, state, created_seq, "
                     "updated_seq, scope_seq, prev_owner_id, prev_team_id, readers, prev_readers,"
                     " state_seq, tail_rows")
_DOCUMENT_UPDATES = (" ON CONFLICT (tenant_id, guid) DO UPDATE SET owner_id = EXCLUDED.owner_id,"
                     " team_id = EXCLUDED.team_id, state = CASE WHEN EXCLUDED.state_seq IS NULL"
                     " THEN EXCLUDED.state ELSE hub_documents.state END,"
                     " updated_seq = EXCLUDED.updated_seq, scope_seq = EXCLUDED.scope_seq,"
                     " prev_owner_id = EXCLUDED.prev_owner_id,"
                     " prev_team_id = EXCLUDED.prev_team_id, readers = EXCLUDED.readers,"
                     " prev_readers = EXCLUDED.prev_readers, state_seq = EXCLUDED.state_seq,"
                     " tail_rows = EXCLUDED.tail_rows")
"""A replaced row keeps its stored state unless the new one is exact (a checkpoint)."""


def _text_array(json_column: str) -> str:
    """SQL turning a JSON array in text (or NULL) back into a text[] column value."""
    return (f"CASE WHEN {json_column} IS NULL THEN NULL ELSE ARRAY(SELECT e FROM "
            f"jsonb_array_elements_text({json_column}::jsonb) WITH ORDINALITY AS r(e, n) "
            "ORDER BY n) END")


_DOCUMENTS_INSERT_MANY = (
    f"INSERT INTO hub_documents (tenant_id, {_DOCUMENT_COLUMNS}) SELECT $1, v.guid,"
    " v.collection, v.record_id, v.owner_id, v.team_id, v.state, v.created_seq, v.updated_seq,"
    f" v.scope_seq, v.prev_owner_id, v.prev_team_id, {_text_array('v.readers')},"
    f" {_text_array('v.prev_readers')}, v.state_seq, v.tail_rows FROM unnest($2::text[],"
    " $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::bigint[], $9::bigint[],"
    " $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[],"
    f" $16::integer[]) AS v({_DOCUMENT_COLUMNS})")
"""Readers travel as JSON text: a list inside an array parameter would read as one more
dimension."""
_DOCUMENTS_INSERT_ONE = (
    f"INSERT INTO hub_documents (tenant_id, {_DOCUMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6,"
    f" $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")


async def write_documents(conn: asyncpg.Connection, tenant_id: str,
                          rows: Sequence[DocumentRow], *, replace: bool = True) -> None:
    """Insert documents (``replace``: or replace them; a replaced one keeps the sequence it was
    created at)."""
    conflict = _DOCUMENT_UPDATES if replace else ""
    if len(rows) < UNNEST_FROM_ROWS:
        await conn.executemany(_DOCUMENTS_INSERT_ONE + conflict,
                               [(tenant_id, *row) for row in rows])
        return
    await conn.execute(_DOCUMENTS_INSERT_MANY + conflict, tenant_id, *_columns(
        [(*row[:11], _json_text(row[11]), _json_text(row[12]), *row[13:]) for row in rows]))


_ARRAY_TYPES = {"str": "text", "int": "bigint", "float": "float8", "bool": "boolean",
                "datetime": "timestamptz", "date": "date", "json": "text"}
"""The array each neutral column type travels in (JSON as text, cast where it is stored)."""


async def write_projection(conn: asyncpg.Connection, table: str, types: Mapping[str, str],
                           rows: Sequence[Mapping[str, Any]], *, replace: bool = True) -> None:
    """Insert projection rows (``replace``: or replace them); columns come from the schema,
    never from input."""
    cols = list(types)
    values = [[_sql_value(t, row.get(c)) for c, t in types.items()] for row in rows]
    conflict = ""
    if replace:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in ("tenant_id", "id"))
        conflict = f" ON CONFLICT (tenant_id, id) DO UPDATE SET {updates}"
    if len(rows) < UNNEST_FROM_ROWS:
        params = ", ".join(f"${i + 1}::text::jsonb" if types[c] == "json" else f"${i + 1}"
                           for i, c in enumerate(cols))
        await conn.executemany(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({params}){conflict}", values)
        return
    arrays = ", ".join(f"${i + 1}::{_ARRAY_TYPES[types[c]]}[]" for i, c in enumerate(cols))
    picked = ", ".join(f"v.{c}::jsonb" if types[c] == "json" else f"v.{c}" for c in cols)
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) SELECT {picked} FROM unnest({arrays}) "
        f"AS v({', '.join(cols)}){conflict}", *_columns(values))


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as columns (every row as long as the first)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else []


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _sql_value(sql_type: str, value: Any) -> Any:
    if value is None:
        return None
    if sql_type == "datetime":
        from datetime import datetime

        return datetime.fromisoformat(value)
    if sql_type == "date":
        from datetime import date

        return date.fromisoformat(value)
    if sql_type == "json":
        return json.dumps(value)
    if sql_type == "float":
        return float(value)
    return value


Values = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
"""Field values to write, or a function of the record's current content giving them."""


class LocalWriter:
    """Writes made on the hub itself (REST, seeding) as CRDT updates authored by the hub.

    The update is produced inside the commit transaction from the document's current state, so a
    hub's client id never forks its own clock, and it goes into the log like any device's update.
    """

    def __init__(self, store: HubStore, client_id: int) -> None:
        self.store = store
        self.client_id = client_id

    async def write(
        self, principal: Principal, coll_name: str, record_id: str, values: Values,
        *, create: bool,
    ) -> Committed:
        """Create or change one record on behalf of ``principal``; ``values`` may be a function
        of the record's current content (read under the document's lock), for changes that
        must build on it (reordering a list)."""
        return (await self.write_many(principal, [(coll_name, record_id, values)],
                                      create=create))[0]

    async def write_many(
        self, principal: Principal, writes: Sequence[tuple[str, str, Values]],
        *, create: bool | Sequence[bool],
    ) -> list[Committed]:
        """Several writes in one transaction (seeding, bulk imports); all or nothing.
        ``create``: for all writes, or one flag per write."""
        from core.errors import Conflict

        creates = [create] * len(writes) if isinstance(create, bool) else list(create)

        results: list[Committed] = []
        async with self.store.db.pool.acquire() as conn, conn.transaction():
            last = await conn.fetchval(
                "UPDATE hub_tenants SET last_seq = last_seq + $2 WHERE tenant_id = $1 "
                "RETURNING last_seq", principal.tenant_id, len(writes),
            )
            if last is None:
                raise NotFound(f"tenant {principal.tenant_id!r} does not exist")
            await conn.execute(
                "INSERT INTO hub_client_ids (tenant_id, client_id, device_id) VALUES ($1, $2, "
                "'hub') ON CONFLICT DO NOTHING", principal.tenant_id, self.client_id,
            )
            for offset, ((coll_name, record_id, values), create_one) in enumerate(
                    zip(writes, creates, strict=True)):
                coll = collection(coll_name)
                guid = f"{coll_name}/{record_id}"
                row = await conn.fetchrow(
                    f"SELECT {STATE_SQL}, d.owner_id, d.team_id, d.updated_seq "
                    "FROM hub_documents d WHERE d.tenant_id = $1 AND d.guid = $2 "
                    "FOR UPDATE", principal.tenant_id, guid,
                )
                if row is not None and not may_read(principal, coll_name, row["owner_id"],
                                                    row["team_id"]):
                    raise NotFound(f"no {coll_name} record {record_id}")
                if create_one and row is not None:
                    raise Conflict(f"{guid} already exists")
                if not create_one and row is None:
                    raise NotFound(f"no {coll_name} record {record_id}")
                doc = RecordDoc(coll, record_id, client_id=self.client_id,
                                state=state_of(row) if row else None)
                before = to_row(doc.project()) if row else None
                update = doc.write(values(doc.content()) if callable(values) else values)
                record = doc.project()
                check_write(principal, coll, before, to_row(record))
                if row is not None and update == EMPTY_UPDATE:  # nothing changed: no entry
                    results.append(Committed(guid, row["updated_seq"], record, duplicate=True))
                    continue
                seq = last - len(writes) + offset + 1
                change = Change(guid, update, base=Version(row["updated_seq"] if row else 0),
                                after=Judged(Version(), record, doc.encode_state()))
                (result,) = await write_changes(conn, principal.tenant_id, [
                    _Pending(change, seq, principal.user_id, None)])
                if not isinstance(result, Committed):
                    raise result
                results.append(result)
            await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL,
                               f"{principal.tenant_id}:{last}")
        return results


async def create_many(
    writer: LocalWriter, principal: Principal,
    records: Sequence[tuple[str, str, dict[str, Any]]],
) -> int:
    """Create many new records in one transaction with batched statements (seeding, imports).

    The same rows as `LocalWriter.write_many` (log, document, projection) and a ``create``
    audit entry per record, without a per-record round trip. All or nothing; an existing guid
    is a `Conflict`.
    """
    from core.errors import Conflict

    docs: list[tuple[str, str, RecordDoc, bytes, dict[str, Any]]] = []
    for coll_name, record_id, values in records:
        doc = RecordDoc(collection(coll_name), record_id, client_id=writer.client_id)
        update = doc.write(values)
        row = to_row(doc.project())
        check_write(principal, doc.collection, None, row)
        docs.append((coll_name, record_id, doc, update, row))
    tenant = principal.tenant_id
    async with writer.store.db.pool.acquire() as conn, conn.transaction():
        last = await conn.fetchval(
            "UPDATE hub_tenants SET last_seq = last_seq + $2 WHERE tenant_id = $1 "
            "RETURNING last_seq", tenant, len(docs))
        if last is None:
            raise NotFound(f"tenant {tenant!r} does not exist")
        guids = [doc.guid for _, _, doc, _, _ in docs]
        taken = await conn.fetchval(
            "SELECT count(*) FROM hub_documents WHERE tenant_id = $1 AND guid = ANY($2)",
            tenant, guids)
        if taken:
            raise Conflict(f"{taken} of these records already exist")
        await conn.execute(
            "INSERT INTO hub_client_ids (tenant_id, client_id, device_id) VALUES ($1, $2, "
            "'hub') ON CONFLICT DO NOTHING", tenant, writer.client_id)
        first = last - len(docs) + 1
        seqs = range(first, last + 1)
        await conn.copy_records_to_table(  # audited below as 'create' entries, not by the log
            "hub_updates", columns=("tenant_id", "seq", "guid", "data", "user_id", "audit_id"),
            records=[(tenant, seq, d[2].guid, d[3], principal.user_id, None)
                     for seq, d in zip(seqs, docs, strict=True)])
        await write_documents(conn, tenant, [
            (d[2].guid, d[0], d[1], d[4].get("owner_id"), d[4].get("team_id"),
             d[2].encode_state(), seq, seq, seq, None, None, readers_of(d[0], d[4]), None, None,
             0)
            for seq, d in zip(seqs, docs, strict=True)], replace=False)
        by_table: dict[str, list[dict[str, Any]]] = {}
        for coll_name, _, _, _, row in docs:
            by_table.setdefault(coll_name, []).append(row)
        for coll_name, rows in by_table.items():
            coll = collection(coll_name)
            types = column_types(coll)
            await write_projection(conn, coll.table, types, rows, replace=False)
        await conn.execute(
            "INSERT INTO hub_audit (tenant_id, user_id, action, guid, seq) SELECT $1, $2, "
            "'create', v.guid, v.seq FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY "
            "AS v(guid, seq, n) ORDER BY v.n", tenant, principal.user_id,
            [d[2].guid for d in docs], list(seqs))
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, f"{tenant}:{last}")
    return len(docs)
