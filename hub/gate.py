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

from core.errors import CausalityError, RecordInvalid, StorageError, VelocityError
from core.identity import Principal
from core.ids import split_guid
from core.settings import SyncLimits
from hub.policy import check_write
from hub.store import Change, Document, HubStore
from schema import Collection, CrdtKind, collection, to_row
from schema.models import Record
from sync.record import TRUSTED_LIMITS, RecordDoc
from sync.sandbox import Job, SandboxPool, SandboxRefused, SandboxResult
from sync.ycheck import Inspection, OriginIndex, RootKind, inspect
from sync.yupdate import decode_state_vector


@dataclass(frozen=True, slots=True)
class Admitted:
    change: Change


@dataclass(frozen=True, slots=True)
class AlreadyHeld:
    """Every clock of the update is already in the hub's document (a retry under a new id)."""


@dataclass(frozen=True, slots=True)
class Refused:
    error: VelocityError

    @property
    def hostile(self) -> bool:
        """Refusals that count against the device (malformed or unsafe bytes, crashes)."""
        from core.errors import ProtocolError

        if isinstance(self.error, SandboxRefused):
            return self.error.blames_update
        if isinstance(self.error, CausalityError):
            return self.error.code == "foreign_client"  # authoring another device's items
        return isinstance(self.error, ProtocolError)


Verdict = Admitted | AlreadyHeld | Refused


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
        try:
            while any(queues.values()):
                wave = [q.popleft() for q in queues.values() if q]
                prepared: list[tuple[int, _Prepared]] = []
                for i in wave:
                    guid, update, _ = items[i]
                    try:
                        held = self._held(principal.tenant_id, guid, overlay, stored)
                        prep = self._prepare(bound_clients, held, update)
                    except VelocityError as exc:
                        verdicts[i] = Refused(exc)
                        continue
                    if prep is None:
                        verdicts[i] = AlreadyHeld()
                    else:
                        prepared.append((i, prep))
                jobs = [Job(p.held.coll.name, p.held.record_id, p.held.state, (items[i][1],))
                        for i, p in prepared]
                results = await self._sandbox.apply_many(jobs)
                for (i, prep), result in zip(prepared, results, strict=True):
                    guid, update, update_id = items[i]
                    held = prep.held
                    try:
                        after = self._judge(principal, prep, update, result)
                    except VelocityError as exc:
                        verdicts[i] = Refused(exc)
                        if held.dirty:  # applied, then refused: back to what was held
                            overlay[guid] = _Held.load(held.coll, held.record_id, held.state,
                                                       held.row)
                        continue
                    verdicts[i] = Admitted(Change(guid, update, update_id, base=prep.base,
                                                  after=(held.state, after)))
        finally:
            for guid, held in overlay.items():  # what a later batch will find stored
                if not held.dirty:
                    self._keep(principal.tenant_id, guid, held)
        assert all(v is not None for v in verdicts)
        return verdicts  # type: ignore[return-value]

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
            except VelocityError as exc:  # the hub's own state: never the pushing device's fault
                raise StorageError(f"{guid} as stored cannot be judged against ({exc.code}): "
                                   f"{exc.message}; an admin must repair it",
                                   code="stored_invalid") from exc
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
            inspection = inspect(update, limits=self._limits, roots=_roots(held.coll),
                                 bound_clients=bound_clients, held=held.clocks,
                                 index=held.index)
        except CausalityError as exc:
            if exc.code == "already_applied":
                return None
            raise
        return _Prepared(held, held.state, inspection)

    def _judge(self, principal: Principal, prep: _Prepared, update: bytes, result: object
               ) -> Record:
        """The record after the update, applied here once the sandbox survived it; the
        document held for the next update moves on with it."""
        if isinstance(result, SandboxRefused):
            raise result
        assert isinstance(result, SandboxResult)
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
        held.dirty = False
        return after


_ROOT_KINDS = {CrdtKind.REGISTER: RootKind.MAP, CrdtKind.TEXT: RootKind.TEXT,
               CrdtKind.LIST: RootKind.ARRAY}


def _roots(coll: Collection) -> dict[str, RootKind]:
    return {name: _ROOT_KINDS[kind] for name, kind in coll.roots.items()}


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
