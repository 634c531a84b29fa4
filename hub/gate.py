"""The gate every CRDT update from outside the hub passes before it may commit.

1. strict decode and checks (sync.yupdate, sync.ycheck): bounds, schema roots and content
   types, client ids bound to the pushing device, clocks contiguous with what the hub holds;
2. first apply in an isolated worker process (sync.sandbox), so a crash kills a worker;
3. the resulting record must validate, and the principal must be allowed the change.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque
from collections.abc import Collection as Coll
from collections.abc import Sequence
from dataclasses import dataclass
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
from hub.store import Change, Document, HubStore
from schema import Collection, collection, to_row
from schema.models import Record
from sync.record import TRUSTED_LIMITS, RecordDoc, root_kinds
from sync.sandbox import (
    APPLY_FAILED,
    WORKER_CRASHED,
    WORKER_PANICKED,
    WORKER_TIMEOUT,
    Job,
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


Verdict = Admitted | AlreadyHeld | Refused | Deferred
RETRIED_CODES = frozenset({WORKER_CRASHED, WORKER_PANICKED, WORKER_TIMEOUT, APPLY_FAILED})
"""Sandbox failures tried once more on a fresh run before anyone is blamed: a crash, panic or
failure that repeats on the same bytes (and not on the document alone) is the update's; a
timeout never is (the machine may just be busy)."""


class Gate:
    def __init__(self, store: HubStore, sandbox: SandboxPool, limits: SyncLimits,
                 *, hot_documents: int) -> None:
        """``hot_documents``: how many documents to keep as judged between batches (the least
        recently used go first)."""
        self._store = store
        self._sandbox = sandbox
        self._limits = limits
        self._hot: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._hot_size = hot_documents

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
        overlay: dict[str, _Held] = {}
        """Each document as this batch left it so far (owned here until the batch ends)."""
        stored = await self._store.documents(principal.tenant_id, list(queues))
        deferred: dict[str, Deferred] = {}
        """Documents with an update not judged: their later updates wait for it too."""
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
                    try:
                        held = self._held(principal.tenant_id, guid, overlay, stored)
                    except DocumentDamaged as exc:
                        verdicts[i] = Deferred(exc)
                        continue
                    except VelocityError as exc:  # a guid naming no collection
                        verdicts[i] = Refused(exc)
                        continue
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
                    except VelocityError as exc:
                        verdicts[i] = self._refusal(held, exc, hostile=False)
                        if held.dirty:  # applied, then refused: back to what was held
                            overlay[guid] = _Held.load(held.coll, held.record_id, held.state,
                                                       held.row)
                        continue
                    verdicts[i] = Admitted(Change(guid, update, update_id, base=prep.base,
                                                  after=(held.state, after)))
                for i in wave:
                    verdict = verdicts[i]
                    if isinstance(verdict, Deferred):
                        deferred[items[i][0]] = verdict
        finally:
            for guid, held in overlay.items():  # what a later batch will find stored
                if not held.dirty:
                    self._keep(principal.tenant_id, guid, held)
        assert all(v is not None for v in verdicts)
        return verdicts  # type: ignore[return-value]

    async def _sandbox_results(self, work: Sequence[tuple[_Held, bytes]]
                               ) -> list[SandboxResult | Refused | Deferred]:
        """Apply each update to its document in the sandbox. A job that fails is run once more,
        beside its document alone: a failure that repeats, on a document that loads by itself,
        is the update's (hostile); a timeout, a closing pool or a document that fails alone is
        the hub's (deferred)."""
        jobs = [Job(h.coll.name, h.record_id, h.state, (update,)) for h, update in work]
        first = await self._sandbox.apply_many(jobs)
        again = [n for n, r in enumerate(first)
                 if isinstance(r, SandboxRefused) and r.code in RETRIED_CODES]
        out: list[SandboxResult | Refused | Deferred] = [
            r if isinstance(r, SandboxResult) else Deferred(r) for r in first]
        if not again:
            return out
        alone = [Job(work[n][0].coll.name, work[n][0].record_id, work[n][0].state, ())
                 for n in again]
        outcomes = await self._sandbox.apply_many(alone + [jobs[n] for n in again])
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

    def _held(self, tenant_id: str, guid: str, overlay: dict[str, _Held],
              stored: dict[str, Document]) -> _Held:
        """The document an update of ``guid`` is judged on, taken into ``overlay``: as this
        batch left it, else as this hub last left it if that is still what is stored, else
        loaded from what is stored."""
        if guid in overlay:
            return overlay[guid]
        try:
            coll_name, record_id = split_guid(guid)
        except ValueError as exc:
            raise RecordInvalid(str(exc)) from None
        coll = collection(coll_name)
        state = stored[guid].state if guid in stored else b""
        held = self._hot.pop((tenant_id, guid), None)
        if held is None or held.state != state:
            try:
                held = _Held.load(coll, record_id, state, None)
            except VelocityError as exc:  # what is stored does not load: not the update's fault
                raise DocumentDamaged(f"the hub's copy of {guid} does not load ({exc.code}: "
                                      f"{exc.message}); an admin must repair it") from exc
        overlay[guid] = held
        return held

    def _keep(self, tenant_id: str, guid: str, held: _Held) -> None:
        self._hot[tenant_id, guid] = held
        self._hot.move_to_end((tenant_id, guid))
        while len(self._hot) > self._hot_size:
            self._hot.popitem(last=False)

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
        return _Prepared(held, held.state, inspection)

    def _judge(self, principal: Principal, prep: _Prepared, update: bytes,
               result: SandboxResult) -> Record:
        """The record after the update, applied here once the sandbox survived it; the
        document held for the next update moves on with it."""
        if result.pending:
            raise CausalityError("update depends on changes the hub does not hold", code="gap")
        held = prep.held
        held.dirty = True  # until every part below agrees again
        held.doc.apply(update, in_order=True)  # causality checked, and safe: the sandbox lived
        after = held.doc.project()
        row = to_row(after)
        check_write(principal, held.coll, held.row, row)
        held.index.extend(prep.inspection)
        held.state, held.row = held.doc.encode_state(), row
        held.clocks = decode_state_vector(held.doc.state_vector(), TRUSTED_LIMITS)
        held.dirty, held.damaged = False, None
        return after


@dataclass(slots=True)
class _Held:
    """A document as the hub holds it, ready to judge the next update on: its state, the
    live document, its record's row, its clocks and its origin index."""

    coll: Collection
    record_id: str
    state: bytes
    doc: RecordDoc
    row: dict[str, Any] | None
    clocks: dict[int, int]
    index: OriginIndex
    dirty: bool = False
    """An update was applied to ``doc`` and the other parts do not follow yet."""
    damaged: bool | None = None
    """Whether ``state`` fails the checks an update must pass (None: not looked at yet)."""

    @classmethod
    def load(cls, coll: Collection, record_id: str, state: bytes,
             row: dict[str, Any] | None) -> _Held:
        """From stored bytes (``row``: the record's row when known, else projected here)."""
        doc = RecordDoc(coll, record_id, state=state or None)
        if state and row is None:
            row = to_row(doc.project())
        return cls(coll, record_id, state, doc, row,
                   decode_state_vector(doc.state_vector(), TRUSTED_LIMITS),
                   OriginIndex.from_state(state, TRUSTED_LIMITS) if state else OriginIndex())


@dataclass(frozen=True, slots=True)
class _Prepared:
    held: _Held
    base: bytes
    """``held``'s state when the update was inspected: what it is judged on."""
    inspection: Inspection
