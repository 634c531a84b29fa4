"""The gate every CRDT update from outside the hub passes before it may commit.

1. strict decode and checks (sync.yupdate, sync.ycheck): bounds, schema roots and content
   types, client ids bound to the pushing device, clocks contiguous with what the hub holds;
2. first apply in an isolated worker process (sync.sandbox), so a crash kills a worker;
3. the resulting record must validate, and the principal must be allowed the change.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Collection as Coll
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import CausalityError, RecordInvalid, VelocityError
from core.identity import Principal
from core.ids import split_guid
from core.settings import SyncLimits
from hub.policy import check_write
from hub.store import Change, Document, HubStore
from schema import Collection, CrdtKind, collection, to_row
from schema.models import Record
from sync.record import TRUSTED_LIMITS, RecordDoc
from sync.sandbox import Job, SandboxPool, SandboxRefused, SandboxResult
from sync.ycheck import OriginIndex, RootKind, inspect_update
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
    def __init__(self, store: HubStore, sandbox: SandboxPool, limits: SyncLimits) -> None:
        self._store = store
        self._sandbox = sandbox
        self._limits = limits

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
        overlay: dict[str, tuple[bytes, dict[str, Any] | None]] = {}
        stored = await self._store.documents(principal.tenant_id, list(queues))
        while any(queues.values()):
            wave = [q.popleft() for q in queues.values() if q]
            prepared: list[tuple[int, _Prepared]] = []
            for i in wave:
                guid, update, _ = items[i]
                try:
                    prep = self._prepare(principal, bound_clients, guid, update, overlay,
                                         stored)
                except VelocityError as exc:
                    verdicts[i] = Refused(exc)
                    continue
                if prep is None:
                    verdicts[i] = AlreadyHeld()
                else:
                    prepared.append((i, prep))
            jobs = [Job(p.coll.name, p.record_id, p.state, (items[i][1],)) for i, p in prepared]
            results = await self._sandbox.apply_many(jobs)
            for (i, prep), result in zip(prepared, results, strict=True):
                guid, update, update_id = items[i]
                try:
                    after, row = self._judge(principal, prep, update, result)
                except VelocityError as exc:
                    verdicts[i] = Refused(exc)
                    continue
                state = prep.doc.encode_state()
                overlay[guid] = (state, row)
                verdicts[i] = Admitted(Change(guid, update, update_id, base=prep.state,
                                              after=(state, after)))
        assert all(v is not None for v in verdicts)
        return verdicts  # type: ignore[return-value]

    def _prepare(
        self, principal: Principal, bound_clients: Coll[int], guid: str, update: bytes,
        overlay: dict[str, tuple[bytes, dict[str, Any] | None]], stored: dict[str, Document],
    ) -> _Prepared | None:
        try:
            coll_name, record_id = split_guid(guid)
        except ValueError as exc:
            raise RecordInvalid(str(exc)) from None
        coll = collection(coll_name)
        if guid in overlay:
            state, before = overlay[guid]
        else:
            state, before = (stored[guid].state if guid in stored else b""), None
        doc = RecordDoc(coll, record_id, state=state or None)  # one load serves both reads
        if guid in stored and guid not in overlay:
            before = to_row(doc.project())
        held = decode_state_vector(doc.state_vector(), TRUSTED_LIMITS)
        index = OriginIndex.from_state(state, TRUSTED_LIMITS) if state else OriginIndex()
        try:
            inspect_update(update, limits=self._limits, roots=_roots(coll),
                           bound_clients=bound_clients, held=held, index=index)
        except CausalityError as exc:
            if exc.code == "already_applied":
                return None
            raise
        return _Prepared(coll, record_id, state, before, doc)

    def _judge(self, principal: Principal, prep: _Prepared, update: bytes, result: object
               ) -> tuple[Record, dict[str, Any]]:
        """The record (and row) after the update, applied here once the sandbox survived it."""
        if isinstance(result, SandboxRefused):
            raise result
        assert isinstance(result, SandboxResult)
        if result.pending:
            raise CausalityError("update depends on changes the hub does not hold", code="gap")
        prep.doc.apply(update, in_order=True)  # causality checked, and safe: the sandbox lived
        after = prep.doc.project()
        row = to_row(after)
        check_write(principal, prep.coll, prep.before, row)
        return after, row


_ROOT_KINDS = {CrdtKind.REGISTER: RootKind.MAP, CrdtKind.TEXT: RootKind.TEXT,
               CrdtKind.LIST: RootKind.ARRAY}


def _roots(coll: Collection) -> dict[str, RootKind]:
    return {name: _ROOT_KINDS[kind] for name, kind in coll.roots.items()}


@dataclass(frozen=True, slots=True)
class _Prepared:
    coll: Collection
    record_id: str
    state: bytes
    before: dict[str, Any] | None
    doc: RecordDoc
    """The document at ``state``; the update is applied to it once the sandbox lived."""
