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
import contextlib
import itertools
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Sequence
from collections.abc import Collection as Coll
from dataclasses import dataclass, field
from types import TracebackType
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
from hub.store import Change, Committed, HubStore, Judged, NotCommitted, Version
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
from sync.ycheck import Inspection, OriginIndex, check_values, inspect
from sync.yupdate import decode_state_vector, decode_update


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
    state = held.snapshot()
    if not state:
        return False
    try:
        inspect(state, limits=TRUSTED_LIMITS, roots=root_kinds(held.coll), held={},
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
EXACT_STATE_BYTES = 16 * 1024
"""A kept document about this small or smaller hands the commit its encoded state with each
admitted change, so the commit writes it exact (encoding it costs less than a reader applying
a log tail later); a larger one hands only its update, and the commit appends it to the
document's tail (`hub.storage.checkpoints`)."""
TRUSTED_BACKLOG = 256
"""Log updates a kept document may apply before its sandbox worker's copy is given up (the
next job sends the whole state)."""
Verdict = Admitted | AlreadyHeld | Refused | Deferred
MAX_ITEMS_PER_PASS = 2000
"""A bound on the updates one judging pass takes (the batches after wait for the next)."""
MAX_RUN = 64
"""A bound on the updates of one document sent to the sandbox as one job."""
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
        self._waiting: dict[str, list[_Submission]] = defaultdict(list)
        """Per tenant, the batches waiting for the next judging pass."""
        self._runners: dict[str, asyncio.Task[None]] = {}
        """Per tenant, the task running its passes one after another (while any wait)."""
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
            held.unsettled -= 1
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

    async def __aenter__(self) -> Gate:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        for task in list(self._runners.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def admit_batch(
        self, principal: Principal, bound_clients: Coll[int],
        items: Sequence[tuple[str, bytes, str | None]],
    ) -> list[Verdict]:
        """Judge a push batch of (guid, update, update id); never raises for the updates.

        Updates of one document are judged in order, each on the state its predecessors lead
        to (an offline device pushes several edits of a record at once). The batches of one
        tenant that arrive while a judging pass runs are judged together in the next pass
        (like group commit), and all the updates a pass has for one document go to the
        sandbox as one job: twenty people typing on one page cost one round trip, not twenty.
        """
        future: asyncio.Future[list[Verdict]] = asyncio.get_running_loop().create_future()
        entry = _Submission(principal, bound_clients, items, future)
        tenant_id = principal.tenant_id
        self._waiting[tenant_id].append(entry)
        if tenant_id not in self._runners:
            self._runners[tenant_id] = asyncio.create_task(
                self._run_passes(tenant_id), name=f"velocity-gate-{tenant_id}")
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._abandon(entry)
            raise

    def _abandon(self, entry: _Submission) -> None:
        """The batch's session went away: what it had admitted reaches no commit."""
        entry.abandoned = True
        if entry.future.done():
            if not entry.future.cancelled() and entry.future.exception() is None:
                self.settle([v.change for v in entry.future.result()
                             if isinstance(v, Admitted)], None)
        elif entry.running is None:
            waiting = self._waiting.get(entry.principal.tenant_id, [])
            if entry in waiting:
                waiting.remove(entry)
        elif all(e.abandoned for e in entry.running[1]):
            entry.running[0].cancel()  # nobody waits for this pass any more

    async def _run_passes(self, tenant_id: str) -> None:
        waiting = self._waiting[tenant_id]
        task: asyncio.Task[None] | None = None
        try:
            while waiting:
                taken, size = 0, 0
                while taken < len(waiting) and (
                        not taken or size + len(waiting[taken].items) <= MAX_ITEMS_PER_PASS):
                    size += len(waiting[taken].items)
                    taken += 1
                group, waiting[:taken] = waiting[:taken], []
                task = asyncio.ensure_future(self._pass(tenant_id, group))
                for entry in group:
                    entry.running = (task, group)
                await asyncio.wait({task})
                task = None
        finally:
            if task is not None:  # this runner was cancelled: so is its pass
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for entry in waiting:
                if not entry.future.done():
                    entry.future.cancel()
            waiting.clear()
            self._runners.pop(tenant_id, None)
            self._waiting.pop(tenant_id, None)

    async def _pass(self, tenant_id: str, group: Sequence[_Submission]) -> None:
        """Judge the batches of ``group`` together and give each its verdicts."""
        verdicts: list[list[Verdict | None]] = [[None] * len(e.items) for e in group]
        admitted: list[Change] = []
        judged = False
        try:
            await self._judge_group(tenant_id, group, verdicts, admitted)
            judged = True
        except BaseException as exc:
            for entry in group:
                if not entry.future.done():
                    if isinstance(exc, Exception):
                        entry.future.set_exception(exc)
                    else:
                        entry.future.cancel()
            if isinstance(exc, Exception):
                return  # told to every batch of the pass
            raise
        finally:
            if not judged:  # cancelled or failed: what it admitted reaches no commit
                self.settle(admitted, None)
        for entry, mine in zip(group, verdicts, strict=True):
            assert all(v is not None for v in mine)
            if entry.abandoned:
                self.settle([v.change for v in mine if isinstance(v, Admitted)], None)
            elif not entry.future.done():
                entry.future.set_result(mine)  # type: ignore[arg-type]

    async def _judge_group(self, tenant_id: str, group: Sequence[_Submission],
                           verdicts: list[list[Verdict | None]], admitted: list[Change]
                           ) -> None:
        queues: dict[str, deque[tuple[int, int]]] = defaultdict(deque)
        for n, entry in enumerate(group):
            for i, (guid, _, _) in enumerate(entry.items):
                queues[guid].append((n, i))
        guids = list(queues)
        # What is stored, read before taking the documents.
        heads, horizon = await self._store.document_heads(tenant_id, guids)
        peeked = {g: held.seq for g in guids
                  if (held := self._hot.get((tenant_id, g))) is not None
                  and horizon <= held.seq < heads.get(g, 0) <= held.seq + CATCH_UP_ROWS}
        logged = await self._store.log_rows(
            tenant_id, {g: (seq, heads[g]) for g, seq in peeked.items()}) if peeked else {}
        overlay, failed = await self._take(tenant_id, guids, heads, horizon,
                                           {g: (peeked[g], rows) for g, rows in logged.items()})
        """Each document as this pass left it so far (owned here until the pass ends)."""
        deferred: dict[tuple[int, str], Deferred] = {}
        """A batch's documents with an update not judged: its later updates wait for it."""
        alone: set[str] = set()
        """Documents whose next update goes to the sandbox by itself (a job of several
        updates failed on it)."""

        def decide(guid: str, n: int, i: int, verdict: Verdict) -> None:
            verdicts[n][i] = verdict
            if isinstance(verdict, Deferred):
                deferred[(n, guid)] = verdict
            elif isinstance(verdict, Admitted):
                admitted.append(verdict.change)

        def admit(guid: str, n: int, i: int, prep: _Prepared, result: SandboxResult
                  ) -> Verdict:
            entry = group[n]
            _, update, update_id = entry.items[i]
            held = prep.held
            try:
                after = self._judge(entry.principal, prep, update, result)
            except DocumentDamaged as exc:
                return Deferred(exc)
            except VelocityError as exc:
                return self._refusal(held, exc, hostile=False)
            held.version = Version()
            state = held.snapshot() if held.state_bytes <= EXACT_STATE_BYTES else None
            change = Change(guid, update, update_id, base=prep.base,
                            after=Judged(held.version, after, state))
            self._unsettled[id(change)] = (change, held)
            held.unsettled += 1
            return Admitted(change)

        try:
            while any(queues.values()):
                singles: list[tuple[str, int, int, _Prepared]] = []
                runs: list[tuple[str, list[tuple[int, int]], _Held, _Prepared]] = []
                for guid, queue in queues.items():
                    while queue and (early := self._settled_early(
                            guid, queue[0][0], deferred, failed)) is not None:
                        n, i = queue.popleft()
                        decide(guid, n, i, early)
                    if not queue:
                        continue
                    held = overlay[guid]
                    n, i = queue.popleft()  # checked in full before any sandbox sees it
                    try:
                        prep = self._prepare(group[n].bound, held, group[n].items[i][1])
                    except VelocityError as exc:
                        decide(guid, n, i, self._refusal(held, exc, hostile=_blames_update(exc)))
                        continue
                    if prep is None:
                        decide(guid, n, i, AlreadyHeld())
                        continue
                    run = [(n, i)]
                    if guid not in alone:
                        for m, j in itertools.islice(queue, MAX_RUN - 1):
                            if (m, guid) in deferred or not self._screened(
                                    group[m].bound, group[m].items[j][1]):
                                break  # it goes to the sandbox after the full checks
                            run.append((m, j))
                    alone.discard(guid)
                    if len(run) == 1:
                        singles.append((guid, n, i, prep))
                    else:
                        queue.appendleft((n, i))
                        runs.append((guid, run, held, prep))
                jobs = [Job(h.coll.name, h.record_id, h.snapshot,
                            [group[n].items[i][1] for n, i in run], kept=h.sandbox_job(),
                            each=True) for _, run, h, _ in runs]
                names = [h.next_name for _, _, h, _ in runs]
                for _, _, held, _ in runs:
                    held.sandbox = None  # until every update of the job is admitted
                single_results, run_results = await asyncio.gather(
                    self._sandbox_results([(p.held, group[n].items[i][1])
                                           for _, n, i, p in singles]),
                    self._sandbox.apply_many(jobs) if jobs else _nothing())
                for (guid, n, i, prep), result in zip(singles, single_results, strict=True):
                    if isinstance(result, SandboxResult):
                        verdict = admit(guid, n, i, prep, result)
                        if isinstance(verdict, Admitted):
                            prep.held.sandbox, prep.held.next_name = (prep.after, []), next(
                                _NAMES)
                        decide(guid, n, i, verdict)
                    else:
                        decide(guid, n, i, result)
                for (guid, run, held, first), after, outcome in zip(
                        runs, names, run_results, strict=True):
                    if not isinstance(outcome, SandboxResult):  # its updates go one by one
                        alone.add(guid)
                        continue
                    if self._judge_run(guid, run, first, outcome, group, decide, admit):
                        held.sandbox, held.next_name = (after, []), next(_NAMES)
                    decided = sum(1 for n, i in run if verdicts[n][i] is not None)
                    for _ in range(decided):
                        queues[guid].popleft()
                    if outcome.stopped is not None or not decided:
                        alone.add(guid)  # the update it stopped at: its blame decided alone
        finally:
            for held in overlay.values():  # what a later pass will find stored
                if not held.dirty and not held.stale:
                    self._keep(held)

    def _judge_run(self, guid: str, run: Sequence[tuple[int, int]], first: _Prepared,
                   outcome: SandboxResult, group: Sequence[_Submission],
                   decide: Callable[[str, int, int, Verdict], None],
                   admit: Callable[[str, int, int, _Prepared, SandboxResult], Verdict]) -> bool:
        """Judge a job of several updates of one document step by step, on the content the
        sandbox gave after each (``first``: the first update, checked before the job); stops at
        the first not admitted (the ones after it were applied on top of it there, so they go
        again). Whether all were admitted."""
        held = first.held
        for k, ((n, i), (content, pending)) in enumerate(zip(run, outcome.steps, strict=False)):
            try:
                prep = first if k == 0 else self._prepare(group[n].bound, held,
                                                          group[n].items[i][1])
            except VelocityError as exc:
                decide(guid, n, i, self._refusal(held, exc, hostile=_blames_update(exc)))
                return False
            if prep is None:
                decide(guid, n, i, AlreadyHeld())  # changed nothing in the sandbox either
                continue
            verdict = admit(guid, n, i, prep, SandboxResult(b"", content, pending, outcome.pid))
            decide(guid, n, i, verdict)
            if not isinstance(verdict, Admitted):
                return False
        return outcome.stopped is None and len(outcome.steps) == len(run)

    def _screened(self, bound_clients: Coll[int], update: bytes) -> bool:
        """Whether an update passes the checks that need no document (well formed, only the
        device's own client ids, no unsafe value), so it may go to the sandbox in a job after
        others of its document; one that does not is checked in full first, by itself."""
        try:
            decoded = decode_update(update, self._limits, resolve=False)
            check_values(decoded)
        except VelocityError:
            return False
        return set(decoded.clients) <= set(bound_clients)

    def _settled_early(self, guid: str, n: int, deferred: dict[tuple[int, str], Deferred],
                       failed: dict[str, VelocityError]) -> Verdict | None:
        """The verdict of batch ``n``'s next update of ``guid`` when no judging is needed."""
        if (n, guid) in deferred:  # builds on an update not judged: pushed again too
            return Deferred(VelocityError(
                f"{guid}: an earlier update of this batch is to be pushed again first "
                f"({deferred[(n, guid)].error.code})", code="waits"))
        if guid in failed:
            exc = failed[guid]
            return Deferred(exc) if isinstance(exc, DocumentDamaged) else Refused(exc)
        return None

    async def _sandbox_results(self, work: Sequence[tuple[_Held, bytes]]
                               ) -> list[SandboxResult | Refused | Deferred]:
        """Apply each update to its document in the sandbox. A job that fails is run once more,
        beside its document alone: a failure that repeats, on a document that loads by itself,
        is the update's (hostile); a timeout, a closing pool or a document that fails alone is
        the hub's (deferred)."""
        if not work:
            return []
        jobs = [Job(h.coll.name, h.record_id, h.snapshot, (update,), kept=h.sandbox_job())
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
        alone = [Job(work[n][0].coll.name, work[n][0].record_id, work[n][0].snapshot, ())
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
        return _Prepared(held, held.version, inspection, held.next_name)

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
        held.moved(len(update))
        held.row = row
        for client, (_, end) in prep.inspection.decoded.clients.items():
            held.clocks[client] = end  # it continued exactly these clocks
        held.dirty, held.damaged = False, None
        return after


async def _nothing() -> list[SandboxResult | SandboxRefused]:
    return []


@dataclass(eq=False, slots=True)
class _Submission:
    """A push batch waiting for a judging pass, or judged in one."""

    principal: Principal
    bound: Coll[int]
    items: Sequence[tuple[str, bytes, str | None]]
    future: asyncio.Future[list[Verdict]]
    running: tuple[asyncio.Task[None], Sequence[_Submission]] | None = None
    """The pass judging it, and every batch of that pass."""
    abandoned: bool = False
    """Its session went away: nobody commits what it admits."""


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
    encoded: bytes | None
    """The document's state as bytes, while none was applied since (see `snapshot`)."""
    doc: RecordDoc
    row: dict[str, Any] | None
    clocks: dict[int, int]
    index: OriginIndex
    seq: int
    """The stored document's sequence this holds (0: not stored yet)."""
    version: Version
    """The version of the state it holds (the base of the next change admitted on it)."""
    state_bytes: int = 0
    """About how large its state is (the last one encoded, and the updates applied since)."""
    unsettled: int = 0
    """Changes admitted on it that have not committed (or failed to) yet."""
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
                   seq, Version(seq), len(state))

    def snapshot(self) -> bytes:
        """The whole state as bytes, encoded only when asked for (a small document's state
        for the commit, a sandbox worker that lost its copy, a damaged-document check)."""
        if self.encoded is None:
            self.encoded = self.doc.encode_state()
            self.state_bytes = len(self.encoded)
        return self.encoded

    def moved(self, update_bytes: int) -> None:
        """An update of ``update_bytes`` was applied to ``doc``."""
        self.encoded = None
        self.state_bytes += update_bytes

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
                self.moved(len(data))
                self.index.extend(inspection)
                for client, (_, end) in inspection.decoded.clients.items():
                    self.clocks[client] = end
                if self.sandbox is not None:
                    self.sandbox[1].append(data)
                    if len(self.sandbox[1]) > TRUSTED_BACKLOG:
                        self.sandbox = None
            if applied:
                self.row = to_row(self.doc.project())
        except VelocityError:
            return False
        self.seq, self.dirty, self.damaged = upto, False, None
        if applied:  # the stored document's state at upto, unless changes admitted here wait
            self.version = Version(upto if not self.unsettled else None)
        return True

    def weight(self) -> int:
        """About how much memory it takes (its state, and the origin index's entries)."""
        return 4096 + 2 * self.state_bytes + 160 * self.index.entries


@dataclass(frozen=True, slots=True)
class _Prepared:
    held: _Held
    base: Version
    """``held``'s state when the update was inspected: what it is judged on."""
    inspection: Inspection
    after: int
    """The name of the state the update leads to in the sandbox worker."""
