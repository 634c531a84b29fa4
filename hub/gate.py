"""The gate every CRDT update from outside the hub passes before it may commit.

1. strict decode and checks (sync.yupdate, sync.ycheck): bounds, schema roots and content
   types, client ids bound to the pushing device, clocks contiguous with what the hub holds;
2. first apply in an isolated worker process (sync.sandbox), so a crash kills a worker;
3. the resulting record must validate, and the principal must be allowed the change.

The gate keeps the documents it judged (`_Held`: live document, row, clocks, origin index, the
stored sequence it stands at) and brings a kept one up to date with the log rows committed
since (by any device, any hub process) instead of loading the stored state again; its sandbox
worker keeps the document too (`sync.sandbox.Kept`). So judging an update costs the same
whatever the record's history. A change admitted on a kept document is in it before it
commits; the committer reports every outcome (`Gate.settle`), and a document with a change
that did not commit is dropped, never judged on again.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, defaultdict, deque
from collections.abc import Collection as Coll
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import (
    CausalityError,
    ProtocolError,
    RecordInvalid,
    StorageError,
    VelocityError,
)
from core.identity import Principal
from core.ids import split_guid
from core.settings import SyncLimits
from hub.policy import check_write
from hub.store import Change, Committed, HubStore, NotCommitted
from schema import Collection, collection, project, to_row
from schema.models import Record
from sync.record import TRUSTED_LIMITS, RecordDoc, root_kinds
from sync.sandbox import (
    APPLY_FAILED,
    WORKER_CRASHED,
    WORKER_PANICKED,
    WORKER_TIMEOUT,
    Job,
    Kept,
    SandboxPool,
    SandboxRefused,
    SandboxResult,
)
from sync.ycheck import Inspection, OriginIndex, inspect
from sync.yupdate import decode_state_vector


@dataclass(frozen=True, slots=True)
class Admitted:
    change: Change


@dataclass(frozen=True, slots=True)
class KeptDocument:
    state: bytes
    index: OriginIndex
    seq: int


@dataclass(frozen=True, slots=True)
class AlreadyHeld:
    """Every clock of the update is already in the hub's document (a retry under a new id)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Refused for good; ``hostile``: only a client that is not honest sends such bytes (they
    count against the device)."""

    error: VelocityError
    hostile: bool = False


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not judged: the hub could not, now (the sandbox timed out or is restarting, or the
    stored document needs repair). Nothing was stored; the device sends it again later."""

    error: VelocityError


class DocumentDamaged(StorageError):
    """The hub's stored copy of a document fails the checks every update must pass: no update
    to it is judged (nor anyone blamed) until an admin repairs it."""

    code = "stored_invalid"


def _damaged_error(held: _Held, cause: VelocityError) -> DocumentDamaged:
    return DocumentDamaged(f"the hub's copy of {held.coll.name}/{held.record_id} is damaged "
                           f"({cause.code}: {cause.message}); an admin must repair it")


def _fails_checks(held: _Held) -> bool:
    """Whether the stored document, taken as one update onto nothing, fails the checks."""
    if not held.state:
        return False
    try:
        inspect(held.state, limits=TRUSTED_LIMITS, roots=root_kinds(held.coll), held={},
                bound_clients=held.clocks.keys(), index=OriginIndex())
    except VelocityError:
        return True
    return False


def _blames_job(failure: SandboxRefused) -> bool:
    """Whether a sandbox failure came from the job's bytes (a crash, panic or error in the
    library), not from the time it took or the pool."""
    return failure.blames_update and failure.code != WORKER_TIMEOUT


def _blames_update(error: VelocityError) -> bool:
    """Whether the checks that raised ``error`` found the update's own bytes unsafe: malformed
    or forbidden constructs, or another device's client ids (clocks that merely do not
    continue the document, and records that do not validate, can come from honest devices)."""
    if isinstance(error, CausalityError):
        return error.code == "foreign_client"  # authoring another device's items
    return isinstance(error, ProtocolError)


CATCH_UP_ROWS = 64
"""A kept document at most this many sequences behind what is stored catches up from the log;
further behind, it is loaded from the stored state."""
TRUSTED_BACKLOG = 256
"""Log updates a kept document may apply before its sandbox worker's copy is given up (the
next job sends the whole state)."""
Verdict = Admitted | AlreadyHeld | Refused | Deferred
RETRIED_CODES = frozenset({WORKER_CRASHED, WORKER_PANICKED, WORKER_TIMEOUT, APPLY_FAILED})
"""Sandbox failures tried once more on a fresh run before anyone is blamed: a crash, panic or
failure that repeats on the same bytes (and not on the document alone) is the update's; a
timeout never is (the machine may just be busy)."""


class Gate:
    def __init__(self, store: HubStore, sandbox: SandboxPool, limits: SyncLimits,
                 *, hot_documents: int, hot_bytes: int = 256 * 2**20) -> None:
        """``hot_documents``, ``hot_bytes``: how many documents, and about how much memory, to
        keep as judged between batches (the least recently used go first)."""
        self._store = store
        self._sandbox = sandbox
        self._limits = limits
        self._hot: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._hot_size = hot_documents
        self._hot_bytes = hot_bytes
        self._kept_bytes = 0
        self._busy: dict[tuple[str, str], asyncio.Future[None]] = {}
        """Documents a running batch judges (done when it lets them go)."""
        self._unsettled: dict[int, tuple[Change, _Held]] = {}
        """Admitted changes not committed yet (by the change's id), with the document they
        were admitted on."""

    def settle(self, changes: Sequence[Change],
               results: Sequence[Committed | NotCommitted] | None) -> None:
        """What became of admitted changes (each one's result; None: none committed). A
        document whose change committed right after the sequence it stands at now stands at
        that change's; one holding a change that did not commit is dropped: it is ahead of the
        store."""
        for n, change in enumerate(changes):
            entry = self._unsettled.pop(id(change), None)
            if entry is None:
                continue
            held = entry[1]
            result = results[n] if results is not None else None
            if isinstance(result, Committed):
                if result.previous is not None and result.previous == held.seq:
                    held.seq = result.seq  # nothing else came in between: no catch-up
                continue
            held.stale = True
            if self._hot.get(held.key) is held:
                self._drop(held.key)

    def kept(self, tenant_id: str, guid: str) -> KeptDocument | None:
        """The document this gate keeps for ``guid`` between batches, if any (a copy of its
        state, with its origin index and the stored sequence it stands at)."""
        held = self._hot.get((tenant_id, guid))
        if held is None:
            return None
        return KeptDocument(held.doc.encode_state(), held.index, held.seq)

    async def admit_batch(
        self, principal: Principal, bound_clients: Coll[int],
        items: Sequence[tuple[str, bytes, str | None]],
    ) -> list[Verdict]:
        """Judge a push batch of (guid, update, update id); never raises for the updates.

        Updates of one document are judged in order, each on the state its predecessors in the
        batch lead to (an offline device pushes several edits of a record at once). The first
        update of every document goes to the sandbox together, then the second, and so on, so a
        batch costs a few round trips, not one per update.
        """
        verdicts: list[Verdict | None] = [None] * len(items)
        queues: dict[str, deque[int]] = defaultdict(deque)
        for i, (guid, _, _) in enumerate(items):
            queues[guid].append(i)
        tenant_id, guids = principal.tenant_id, list(queues)
        # What is stored, read before waiting for the documents: the wait holds no query.
        heads, horizon = await self._store.document_heads(tenant_id, guids)
        peeked = {g: held.seq for g in guids
                  if (held := self._hot.get((tenant_id, g))) is not None
                  and horizon <= held.seq < heads.get(g, 0) <= held.seq + CATCH_UP_ROWS}
        logged = await self._store.log_rows(
            tenant_id, {g: (seq, heads[g]) for g, seq in peeked.items()}) if peeked else {}
        owned = await self._own(tenant_id, guids)
        try:
            overlay, failed = await self._take(tenant_id, guids, heads, horizon,
                                               {g: (peeked[g], rows) for g, rows in logged.items()})
        except BaseException:
            self._release(owned)
            raise
        """Each document as this batch left it so far (owned here until the batch ends)."""
        deferred: dict[str, Deferred] = {}
        """Documents with an update not judged: their later updates wait for it too."""
        admitted: list[Change] = []
        judged = False
        try:
            while any(queues.values()):
                wave = [q.popleft() for q in queues.values() if q]
                prepared: list[tuple[int, _Prepared]] = []
                for i in wave:
                    guid, update, _ = items[i]
                    if guid in deferred:  # builds on an update not judged: pushed again too
                        verdicts[i] = Deferred(VelocityError(
                            f"{guid}: an earlier update of this batch is to be pushed again "
                            f"first ({deferred[guid].error.code})", code="waits"))
                        continue
                    if guid in failed:
                        exc = failed[guid]
                        verdicts[i] = (Deferred(exc) if isinstance(exc, DocumentDamaged)
                                       else Refused(exc))  # else: a guid naming no collection
                        continue
                    held = overlay[guid]
                    try:
                        prep = self._prepare(bound_clients, held, update)
                    except VelocityError as exc:
                        verdicts[i] = self._refusal(held, exc, hostile=_blames_update(exc))
                        continue
                    if prep is None:
                        verdicts[i] = AlreadyHeld()
                    else:
                        prepared.append((i, prep))
                results = await self._sandbox_results(
                    [(p.held, items[i][1]) for i, p in prepared])
                for (i, prep), result in zip(prepared, results, strict=True):
                    guid, update, update_id = items[i]
                    held = prep.held
                    if not isinstance(result, SandboxResult):
                        verdicts[i] = result
                        continue
                    try:
                        after = self._judge(principal, prep, update, result)
                    except DocumentDamaged as exc:
                        verdicts[i] = Deferred(exc)
                        continue
                    except VelocityError as exc:
                        verdicts[i] = self._refusal(held, exc, hostile=False)
                        continue
                    change = Change(guid, update, update_id, base=prep.base,
                                    after=(held.state, after))
                    self._unsettled[id(change)] = (change, held)
                    admitted.append(change)
                    verdicts[i] = Admitted(change)
                for i in wave:
                    verdict = verdicts[i]
                    if isinstance(verdict, Deferred):
                        deferred[items[i][0]] = verdict
            judged = True
        finally:
            if not judged:  # cancelled or failed: what it admitted reaches no commit
                self.settle(admitted, None)
            for held in overlay.values():  # what a later batch will find stored
                if not held.dirty and not held.stale:
                    self._keep(held)
            self._release(owned)
        assert all(v is not None for v in verdicts)
        return verdicts  # type: ignore[return-value]

    async def _sandbox_results(self, work: Sequence[tuple[_Held, bytes]]
                               ) -> list[SandboxResult | Refused | Deferred]:
        """Apply each update to its document in the sandbox. A job that fails is run once more,
        beside its document alone: a failure that repeats, on a document that loads by itself,
        is the update's (hostile); a timeout, a closing pool or a document that fails alone is
        the hub's (deferred)."""
        jobs = [Job(h.coll.name, h.record_id, h.state, (update,), kept=h.sandbox_job())
                for h, update in work]
        for held, _ in work:
            held.sandbox = None  # until the job is admitted: the worker moved on
        first = await self._sandbox.apply_many(jobs)
        again = [n for n, r in enumerate(first)
                 if isinstance(r, SandboxRefused) and r.code in RETRIED_CODES]
        out: list[SandboxResult | Refused | Deferred] = [
            r if isinstance(r, SandboxResult) else Deferred(r) for r in first]
        if not again:
            return out
        alone = [Job(work[n][0].coll.name, work[n][0].record_id, work[n][0].state, ())
                 for n in again]
        outcomes = await self._sandbox.apply_many(
            alone + [Job(jobs[n].collection, jobs[n].record_id, jobs[n].state, jobs[n].updates)
                     for n in again])
        for k, n in enumerate(again):
            document, update = outcomes[k], outcomes[len(again) + k]
            if isinstance(update, SandboxResult):
                out[n] = update  # the first failure was not the update's
            elif isinstance(document, SandboxRefused) and _blames_job(document):
                out[n] = Deferred(_damaged_error(work[n][0], document))
            elif _blames_job(update) and isinstance(document, SandboxResult):
                out[n] = Refused(update, hostile=True)
            else:  # a timeout, or a pool closing: nobody can tell yet
                out[n] = Deferred(update)
        return out

    def _refusal(self, held: _Held, error: VelocityError, *, hostile: bool
                 ) -> Refused | Deferred:
        """A refusal on ``held``, unless the stored document itself fails the checks an update
        must pass: then no update is to blame, and the document needs repair."""
        if held.damaged is None:
            held.damaged = _fails_checks(held)
        if held.damaged:
            return Deferred(_damaged_error(held, error))
        return Refused(error, hostile=hostile)

    async def _own(self, tenant_id: str, guids: Sequence[str]) -> list[tuple[str, str]]:
        """Wait until no other batch of this hub judges any of these documents, and take them
        (in guid order, so two batches never wait for each other): a document is judged by
        one batch at a time, each on what the one before left, never loaded again for it."""
        owned: list[tuple[str, str]] = []
        try:
            for guid in sorted(guids):
                key = (tenant_id, guid)
                while key in self._busy:
                    await asyncio.shield(self._busy[key])
                self._busy[key] = asyncio.get_running_loop().create_future()
                owned.append(key)
        except BaseException:
            self._release(owned)
            raise
        return owned

    def _release(self, owned: Sequence[tuple[str, str]]) -> None:
        for key in owned:
            future = self._busy.pop(key, None)
            if future is not None and not future.done():
                future.set_result(None)

    async def _take(self, tenant_id: str, guids: Sequence[str], heads: dict[str, int],
                    horizon: int, logged: dict[str, tuple[int, list[tuple[int, bytes]]]]
                    ) -> tuple[dict[str, _Held], dict[str, VelocityError]]:
        """The documents updates of ``guids`` are judged on, taken for this batch: as this hub
        kept them, brought up to what is stored (``heads``) with the log rows committed since
        (``logged``: read before, after some sequence; else read now), else loaded from what is
        stored; and why a guid has none (it names no collection, or what is stored is
        damaged)."""
        taken: dict[str, _Held] = {}
        failed: dict[str, VelocityError] = {}
        behind: dict[str, _Held] = {}
        cold: list[str] = []
        for guid in guids:
            try:
                coll_name, _ = split_guid(guid)
                collection(coll_name)
            except ValueError as exc:
                failed[guid] = RecordInvalid(str(exc))
                continue
            except VelocityError as exc:
                failed[guid] = exc
                continue
            stored = heads.get(guid, 0)
            held = self._drop((tenant_id, guid))
            if held is not None and held.stale:
                held = None
            if held is not None and held.seq >= stored:  # beyond: its own commits since
                taken[guid] = held
            elif (held is not None and horizon <= held.seq < stored
                  and stored - held.seq <= CATCH_UP_ROWS):
                behind[guid] = held
            else:
                cold.append(guid)
        for guid, held in list(behind.items()):
            after, rows = logged.get(guid, (held.seq + 1, []))
            if after <= held.seq and held.catch_up(
                    [(seq, data) for seq, data in rows if seq > held.seq], heads[guid]):
                taken[guid] = behind.pop(guid)
            elif held.dirty:  # failed half-way: load it
                del behind[guid]
                cold.append(guid)
        if behind:
            rows = await self._store.log_rows(
                tenant_id, {g: (h.seq, heads[g]) for g, h in behind.items()})
            for guid, held in behind.items():
                if held.catch_up(rows[guid], heads[guid]):
                    taken[guid] = held
                else:
                    cold.append(guid)
        stored_docs = await self._store.documents(
            tenant_id, [g for g in cold if g in heads]) if cold else {}
        for guid in cold:
            coll_name, record_id = split_guid(guid)
            document = stored_docs.get(guid)
            try:
                taken[guid] = _Held.load(
                    (tenant_id, guid), collection(coll_name), record_id,
                    document.state if document else b"", None,
                    document.updated_seq if document else 0)
            except VelocityError as exc:  # what is stored does not load: not the update's fault
                failed[guid] = DocumentDamaged(
                    f"the hub's copy of {guid} does not load ({exc.code}: {exc.message}); an "
                    "admin must repair it")
        return taken, failed

    def _drop(self, key: tuple[str, str]) -> _Held | None:
        held = self._hot.pop(key, None)
        if held is not None:
            self._kept_bytes -= held.size
        return held

    def _keep(self, held: _Held) -> None:
        self._drop(held.key)
        if not self._hot_size:
            return
        held.size = held.weight()
        self._hot[held.key] = held
        self._kept_bytes += held.size
        while self._hot and (len(self._hot) > self._hot_size
                             or self._kept_bytes > self._hot_bytes):
            self._drop(next(iter(self._hot)))

    def _prepare(self, bound_clients: Coll[int], held: _Held, update: bytes
                 ) -> _Prepared | None:
        try:
            inspection = inspect(update, limits=self._limits, roots=root_kinds(held.coll),
                                 bound_clients=bound_clients, held=held.clocks,
                                 index=held.index)
        except CausalityError as exc:
            if exc.code == "already_applied":
                return None
            raise
        return _Prepared(held, held.state, inspection, held.next_name)

    def _judge(self, principal: Principal, prep: _Prepared, update: bytes,
               result: SandboxResult) -> Record:
        """The record after the update, applied here once the sandbox survived it; the
        document held for the next update moves on with it."""
        if result.pending:
            raise CausalityError("update depends on changes the hub does not hold", code="gap")
        held = prep.held
        after = project(held.coll, held.record_id, result.content)  # as the sandbox left it
        row = to_row(after)
        check_write(principal, held.coll, held.row, row)
        held.dirty = True  # until every part below agrees again
        try:  # causality checked against this very document, and safe: the sandbox lived
            held.doc.apply_verified(update, prep.inspection.decoded.clients)
        except StorageError as exc:  # the hub's own trouble: judged again after a reload
            raise DocumentDamaged(f"the hub could not apply {held.key[1]} after judging it "
                                  f"({exc.message}); push again") from exc
        held.index.extend(prep.inspection)
        held.state, held.row = held.doc.encode_state(), row  # the commit writes it
        for client, (_, end) in prep.inspection.decoded.clients.items():
            held.clocks[client] = end  # it continued exactly these clocks
        held.sandbox, held.next_name = (prep.after, []), next(_NAMES)
        held.dirty, held.damaged = False, None
        return after


_NAMES = itertools.count(1)
"""Names of the states sandbox workers keep (unique in this process)."""


@dataclass(slots=True)
class _Held:
    """A document as the hub holds it, ready to judge the next update on: its state, the
    live document, its record's row, its clocks and its origin index, and the stored
    sequence it stands at (plus any change admitted on it that has not committed yet)."""

    key: tuple[str, str]
    """(tenant, guid)."""
    coll: Collection
    record_id: str
    state: bytes
    doc: RecordDoc
    row: dict[str, Any] | None
    clocks: dict[int, int]
    index: OriginIndex
    seq: int
    """The stored document's sequence this holds (0: not stored yet)."""
    sandbox: tuple[int, list[bytes]] | None = None
    """The name of the state the document's sandbox worker keeps, and the log updates applied
    here since (None: the next job sends the state)."""
    next_name: int = field(default_factory=lambda: next(_NAMES))
    """The name the state after the next admitted update gets."""
    size: int = 0
    dirty: bool = False
    """An update was applied to ``doc`` and the other parts do not follow yet."""
    stale: bool = False
    """A change admitted on it did not commit: it is ahead of the store."""
    damaged: bool | None = None
    """Whether ``state`` fails the checks an update must pass (None: not looked at yet)."""

    @classmethod
    def load(cls, key: tuple[str, str], coll: Collection, record_id: str, state: bytes,
             row: dict[str, Any] | None, seq: int) -> _Held:
        """From stored bytes (``row``: the record's row when known, else projected here)."""
        doc = RecordDoc(coll, record_id, state=state or None)
        if state and row is None:
            row = to_row(doc.project())
        return cls(key, coll, record_id, state, doc, row,
                   decode_state_vector(doc.state_vector(), TRUSTED_LIMITS),
                   OriginIndex.from_state(state, TRUSTED_LIMITS) if state else OriginIndex(),
                   seq)

    def sandbox_job(self) -> Kept:
        """How the next update's sandbox job finds this document in its worker."""
        base, trusted = self.sandbox if self.sandbox is not None else (None, [])
        return Kept(f"{self.key[0]}/{self.key[1]}", base, tuple(trusted), self.next_name)

    def catch_up(self, rows: Sequence[tuple[int, bytes]], upto: int) -> bool:
        """Apply the log rows committed after ``seq`` up to ``upto`` (those not in it
        already: its own admitted changes); False when they do not continue it (then it
        must be loaded from what is stored)."""
        if not rows or rows[-1][0] != upto:
            return False
        roots = root_kinds(self.coll)
        applied = False
        try:
            for _, data in rows:
                try:
                    inspection = inspect(data, limits=TRUSTED_LIMITS, roots=roots,
                                         held=self.clocks, bound_clients=None,
                                         index=self.index)
                except CausalityError as exc:
                    if exc.code == "already_applied":
                        continue  # a change admitted here that has committed since
                    raise
                self.dirty = applied = True
                self.doc.apply_verified(data, inspection.decoded.clients)
                self.index.extend(inspection)
                for client, (_, end) in inspection.decoded.clients.items():
                    self.clocks[client] = end
                if self.sandbox is not None:
                    self.sandbox[1].append(data)
                    if len(self.sandbox[1]) > TRUSTED_BACKLOG:
                        self.sandbox = None
            if applied:
                self.state = self.doc.encode_state()
                self.row = to_row(self.doc.project())
        except VelocityError:
            return False
        self.seq, self.dirty, self.damaged = upto, False, None
        return True

    def weight(self) -> int:
        """About how much memory it takes (its state, and the origin index's entries)."""
        return 4096 + 2 * len(self.state) + 160 * self.index.entries


@dataclass(frozen=True, slots=True)
class _Prepared:
    held: _Held
    base: bytes
    """``held``'s state when the update was inspected: what it is judged on."""
    inspection: Inspection
    after: int
    """The name of the state the update leads to in the sandbox worker."""
