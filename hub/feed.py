"""The live log feed: one read of new commits per tenant, shared by every session of this hub.

Without it, every commit wakes every live session of the tenant and each runs its own query for
the same new rows (51 queries for one commit with 51 devices online). The feed keeps a window of
a tenant's most recent log rows in memory, extends it with one query when a session asks past its
end (concurrent askers wait for that one query), and filters it per session in Python with the
same rules as `HubStore.read_updates`: rows are judged on their document's latest visibility
columns, a document whose read scope changed after the reader's cursor comes as one snapshot
(its latest state), one that left the reader's scope as a removal. A reader behind the window
(bootstrap, a device back after days) reads the database as before.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field

from core.identity import Principal
from hub.scope import may_read
from hub.storage.checkpoints import materialize
from hub.storage.log import LogReads
from hub.store import HubStore, LogItem, log_item

WINDOW_ROWS = 20_000
"""Rows kept per tenant; older ones are dropped half a window at a time."""
MAX_EXTEND_ROWS = 5_000
"""Rows one extension reads; a reader past them gets the rest on its next read."""


@dataclass(slots=True)
class _DocInfo:
    """A document's visibility columns as of the latest row of it the feed read."""

    collection: str
    owner_id: str | None
    team_id: str | None
    prev_owner_id: str | None
    prev_team_id: str | None
    readers: list[str] | None
    prev_readers: list[str] | None
    scope_seq: int
    state: bytes | None
    """Its merged state, read when its scope changed within the window (snapshots need it)."""


@dataclass(slots=True)
class _Window:
    base: int
    """Rows with seq ≤ base are not held; a reader at a cursor below it reads the database."""
    top: int
    seqs: list[int] = field(default_factory=list)
    rows: list[LogItem] = field(default_factory=list)
    """The update of each seq in ``seqs`` as a pull item, with its origin device."""
    docs: dict[str, _DocInfo] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LogFeed:
    """Per-tenant windows of recent log rows for the live sessions of one hub process."""

    def __init__(self, store: HubStore, *, window_rows: int = WINDOW_ROWS) -> None:
        self._store = store
        self._log = LogReads(store.db)
        self._window_rows = window_rows
        self._windows: dict[str, _Window] = {}

    async def read(self, principal: Principal, cursor: int, limit: int, *, last: int,
                   with_own: bool = False) -> tuple[list[LogItem], int]:
        """What `HubStore.read_updates` returns for the same arguments, mostly from memory.
        ``with_own``: the reader's own updates of the documents it receives as updates come
        too, marked by their ``origin`` (for `UpdateMerger`, which merges them with the
        others' so that every reader of a run shares one merge)."""
        if last <= cursor:
            return [], cursor
        window = self._windows.get(principal.tenant_id)
        if window is None:  # the window starts where the first live reader stands
            window = self._windows.setdefault(principal.tenant_id, _Window(cursor, cursor))
        if last > window.top:
            await self._extend(principal.tenant_id, window, last)
        if not window.base <= cursor < window.top:  # behind it, or past a capped extension
            return await self._store.read_updates(principal, cursor, limit, last=last)
        return _filter(window, principal, cursor, min(last, window.top), limit, with_own)

    async def _extend(self, tenant_id: str, window: _Window, last: int) -> None:
        async with window.lock:  # one query however many sessions ask at once
            if last <= window.top:
                return
            rows = await self._log.window(tenant_id, window.top, last, window.base,
                                          MAX_EXTEND_ROWS)
            states: dict[str, bytes] = {}
            """Each snapshot's state, worked out once per document (its rows repeat it)."""
            for r in rows:
                window.seqs.append(r["seq"])
                window.rows.append(LogItem(r["seq"], r["guid"], bytes(r["data"]), False,
                                           origin=r["device_id"]))
                state = r["state"]
                if state is not None and r["guid"] not in states:
                    states[r["guid"]] = materialize(r["guid"], state, r["tail"])
                window.docs[r["guid"]] = _DocInfo(
                    r["collection"], r["owner_id"], r["team_id"], r["prev_owner_id"],
                    r["prev_team_id"], r["readers"], r["prev_readers"], r["scope_seq"],
                    states.get(r["guid"]))
            window.top = rows[-1]["seq"] if len(rows) == MAX_EXTEND_ROWS else last
            if len(window.seqs) > self._window_rows:
                _trim(window, len(window.seqs) - self._window_rows // 2)


def _trim(window: _Window, drop: int) -> None:
    """Forget the oldest ``drop`` rows, and the documents no remaining row refers to."""
    window.base = window.seqs[drop - 1]
    del window.seqs[:drop], window.rows[:drop]
    kept = {item.guid for item in window.rows}
    window.docs = {g: d for g, d in window.docs.items() if g in kept}


def _filter(window: _Window, principal: Principal, cursor: int, last: int, limit: int,
            with_own: bool = False) -> tuple[list[LogItem], int]:
    """The rows in (cursor, last] as the principal's device receives them (see module doc)."""
    items: list[LogItem] = []
    snapshotted: set[str] = set()
    plain: dict[str, bool] = {}
    """Per document: readable, and its scope unchanged since the cursor. Then each of its
    rows is the update itself unless this device made it (`log_item`'s last rule), decided
    here without judging the document again for every row."""
    device = principal.device_id
    start = bisect.bisect_right(window.seqs, cursor)
    end = bisect.bisect_right(window.seqs, last)
    for n in range(start, end):
        row = window.rows[n]
        seq, guid, origin = row.seq, row.guid, row.origin
        is_plain = plain.get(guid)
        if is_plain is None:
            doc = window.docs[guid]
            is_plain = plain[guid] = doc.scope_seq <= cursor and may_read(
                principal, doc.collection, doc.owner_id, doc.team_id, doc.readers)
        if is_plain:
            if with_own or device is None or origin != device:
                items.append(row)
                if len(items) == limit:
                    return items, seq
            continue
        if guid in snapshotted:
            continue
        doc = window.docs[guid]
        item = log_item(principal, cursor, seq, guid,
                        visible=may_read(principal, doc.collection, doc.owner_id, doc.team_id,
                                         doc.readers),
                        collection=doc.collection, prev_owner_id=doc.prev_owner_id,
                        prev_team_id=doc.prev_team_id, prev_readers=doc.prev_readers,
                        scope_seq=doc.scope_seq,
                        state=doc.state, data=row.data, origin=origin)
        if item is None:
            continue
        if item.snapshot or item.removed:  # it stands for the document's history
            snapshotted.add(guid)
        items.append(item)
        if len(items) == limit:
            return items, seq
    return items, last
