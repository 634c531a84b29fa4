"""Apply untrusted CRDT updates in worker processes, so a library crash kills a worker, not the hub.

pycrdt 0.14.13 can segfault or panic on crafted updates (DESIGN.md, "Known hazards"). Every update
from outside the hub is applied here first: a warm worker builds the record from its state, applies
the updates, and sends back the new state and plain content. A worker that dies, panics or hangs
is replaced; its job is refused with a `SandboxRefused` whose ``code`` says why:

``worker_crashed``   the process died (segfault, abort, ``os._exit``, a signal) or sent garbage;
``worker_panicked``  the library raised a ``BaseException`` (pyo3's ``PanicException``);
``worker_timeout``   the worker spent ``timeout_s`` of CPU on one job, or gave no reply within
                     ``WALL_FACTOR`` times that in all (asleep or stuck): it was killed;
``apply_failed``     an ordinary exception (malformed bytes, a size bound, an unknown collection);
``pool_closed``      the pool was closing or closed (not the update's fault);
``pool_unavailable`` the workers could not be started (not the update's fault).

Workers are started with the "spawn" method (the hub runs threads; fork is unsafe) and talk to the
hub over a socket pair: an 8-byte big-endian length, then a pickle of plain values only (tuples,
bytes, str, numbers, lists, dicts). Both sides load with an unpickler that refuses every global, so
a worker whose memory a hostile update corrupted still cannot make the hub run code.

A job may ask the worker to keep its record (`Kept`): the worker then holds the live document
between jobs (least recently used first out, within `KEPT_BYTES` of states and updates), the
next job of that record names the state it builds on instead of sending it, and every job of
one record goes to the same worker. A worker that no longer holds that state (replaced,
evicted, or it applied a job the hub then refused) answers "miss", and the pool sends the job
again with the whole state. So the cost of a job does not grow with the record's history.

In a batch the worker replies job by job, so when it dies the job it was running is known exactly:
that job alone is refused, the earlier ones keep their results and the later ones run on another
(or the replacement) worker. The hub side never blocks: it reads through asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import math
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Literal

from core.errors import UnsafeUpdate
from sync.record import DEFAULT_MAX_UPDATE_BYTES

log = logging.getLogger(__name__)

__all__ = [
    "FAULTS",
    "Job",
    "Kept",
    "SandboxFailure",
    "SandboxPool",
    "SandboxRefused",
    "SandboxResult",
    "SandboxStats",
]

WORKER_CRASHED = "worker_crashed"
WORKER_PANICKED = "worker_panicked"
WORKER_TIMEOUT = "worker_timeout"
APPLY_FAILED = "apply_failed"
POOL_CLOSED = "pool_closed"
POOL_UNAVAILABLE = "pool_unavailable"
UPDATE_CODES = frozenset({WORKER_CRASHED, WORKER_PANICKED, WORKER_TIMEOUT, APPLY_FAILED})
"""Codes caused by the job's own bytes (they count against the sender); the others are the hub's."""

Fault = Literal["segfault", "panic", "hang", "stall", "exit", "slow"]
FAULTS: frozenset[str] = frozenset({"segfault", "panic", "hang", "stall", "exit", "slow"})
"""Test faults a job may carry, honoured only by a pool made with ``allow_test_faults=True``:
"segfault" SIGSEGV to itself, "panic" raises `InjectedPanic`, "hang" loops forever on the CPU,
"stall" sleeps forever, "exit" calls ``os._exit(3)``, "slow" sleeps 0.5 s and then applies
normally (holds a worker busy)."""
WALL_FACTOR = 5
"""A job's wall-time budget, in multiples of its CPU budget (``timeout_s``)."""

_HEADER = struct.Struct("!Q")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_MAX_MESSAGE_BYTES = 1 << 28
_EXIT_GRACE_S = 1.0
_CLOSE_GRACE_S = 0.5
_REAP_LIMIT_S = 5.0
_MESSAGE_CHARS = 300
KEPT_BYTES = 64 * 2**20
"""What one worker keeps of documents between jobs (their states and the updates applied)."""


class SandboxRefused(UnsafeUpdate):
    """An update the sandbox refused; ``code`` says why, ``pid`` names the worker involved."""

    code = "sandbox_refused"

    def __init__(self, message: str, *, code: str, pid: int | None = None) -> None:
        super().__init__(message, code=code)
        self.pid = pid

    @property
    def blames_update(self) -> bool:
        """True when the job's own bytes caused the refusal (False for pool_closed/unavailable)."""
        return self.code in UPDATE_CODES


SandboxFailure = SandboxRefused
"""A refused job in `SandboxPool.apply_many`'s results: the error itself, ready to raise."""


class InjectedPanic(BaseException):
    """Raised in a worker by the "panic" test fault; stands in for pyo3's PanicException."""


@dataclass(frozen=True, slots=True)
class Kept:
    """Keep a job's record in its worker: ``key`` names the record (its worker is chosen by
    it); ``base`` names the state the worker kept after an earlier job (None: none), to which
    ``trusted`` (updates from the hub's log, already judged) bring it to the job's ``state``;
    ``after`` names the state the job leads to. A job sent this way replies without the state
    (``state`` of its result is empty)."""

    key: str
    base: int | None
    trusted: tuple[bytes, ...]
    after: int


@dataclass(frozen=True, slots=True)
class Job:
    """One record to rebuild from ``state`` and apply ``updates`` to, in order (``state`` may
    be a function giving it, called only when the job is sent with its state)."""

    collection: str
    record_id: str
    state: bytes | Callable[[], bytes]
    updates: Sequence[bytes]
    fault: Fault | None = None
    """A test fault (see `FAULTS`); ignored unless the pool allows test faults."""
    kept: Kept | None = None
    each: bool = False
    """Reply with the content after each update too (`SandboxResult.steps`), and stop at the
    first update that fails, keeping what the ones before it gave."""

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown test fault {self.fault!r}; known: {sorted(FAULTS)}")


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """A job that applied cleanly: the record's new full state and its plain content."""

    state: bytes
    content: dict[str, Any]
    pending: bool
    """True when some applied update waits for predecessors (pycrdt holds it, content lacks it)."""
    pid: int
    """The worker that computed it."""
    steps: tuple[tuple[dict[str, Any], bool], ...] = ()
    """For a job asking for ``each``: (content, pending) after each update applied."""
    stopped: str | None = None
    """For a job asking for ``each``: why the update after the last step failed (None: every
    update applied; the result is then the last step's)."""


@dataclass(frozen=True, slots=True)
class SandboxStats:
    """Counters for the admin health page (a snapshot)."""

    size: int
    workers_ready: int
    in_flight: int
    """Jobs handed to the pool and not answered yet (running or waiting for a worker)."""
    jobs: int
    succeeded: int
    failures: dict[str, int]
    restarts: int
    spawn_failures: int
    kept_missed: int = 0
    """Jobs that named a state their worker no longer kept, and were sent again with it."""


@dataclass(eq=False)
class _Worker:
    proc: BaseProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int
    stopping: asyncio.Task[int | None] | None = None


@dataclass(eq=False)
class _Slot:
    index: int
    worker: _Worker | None = None


class _Idle:
    """The idle slots; a waiter asks for one slot in particular or any."""

    def __init__(self) -> None:
        self._slots: dict[int, _Slot] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False

    def put(self, slot: _Slot) -> None:
        self._slots[slot.index] = slot
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def get(self, want: int | None) -> _Slot | None:
        """Slot ``want`` (or any) once idle, taken out; None once closed."""
        while not self._closed:
            if want is None and self._slots:
                return self._slots.pop(next(iter(self._slots)))
            if want is not None and want in self._slots:
                return self._slots.pop(want)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return None


class _BadMessage(Exception):
    """The peer sent something that is not a message of this protocol."""


class SandboxPool:
    """A warm pool of ``size`` worker processes applying untrusted updates (``async with``).

    ``timeout_s`` bounds the CPU time a worker spends on one job (it is killed when it passes),
    and ``WALL_FACTOR`` times it the wall time: on a loaded machine a worker waiting for a core
    is not mistaken for one a crafted update keeps busy. Jobs are spread over the
    workers; a failed worker is replaced before its slot takes more work, and the others and their
    in-flight jobs are not disturbed. Use from one event loop.
    """

    def __init__(
        self,
        size: int = 2,
        timeout_s: float = 2.0,
        *,
        allow_test_faults: bool = False,
        max_update_bytes: int = DEFAULT_MAX_UPDATE_BYTES,
        start_timeout_s: float = 60.0,
    ) -> None:
        if size < 1:
            raise ValueError("a sandbox pool needs at least one worker")
        if timeout_s <= 0 or start_timeout_s <= 0:
            raise ValueError("sandbox timeouts must be positive")
        self.size = size
        self.timeout_s = timeout_s
        self.allow_test_faults = allow_test_faults
        self.max_update_bytes = max_update_bytes
        self.start_timeout_s = start_timeout_s
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(size)]
        self._idle = _Idle()
        self._spawners: set[asyncio.Task[None]] = set()
        self._reapers: set[asyncio.Task[Any]] = set()
        self._state: Literal["new", "open", "closing", "closed"] = "new"
        self._batch_seq = 0
        self._jobs = 0
        self._in_flight = 0
        self._succeeded = 0
        self._failures: Counter[str] = Counter()
        self._restarts = 0
        self._spawn_failures = 0
        self._kept_missed = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> SandboxPool:
        if self._state != "new":
            raise RuntimeError("a SandboxPool can be entered once")
        self._state = "open"
        spawns = [asyncio.ensure_future(self._spawn(slot.index)) for slot in self._slots]
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(self.start_timeout_s):
                await asyncio.gather(*spawns, return_exceptions=True)
        except TimeoutError as exc:
            failure = exc
        except BaseException as exc:  # cancelled while starting
            failure = exc
        for spawn in spawns:
            if not spawn.done():
                spawn.cancel()
        outcomes = await asyncio.gather(*spawns, return_exceptions=True)
        for slot, outcome in zip(self._slots, outcomes, strict=True):
            if isinstance(outcome, _Worker):
                slot.worker = outcome
            elif failure is None:
                failure = outcome
        if failure is not None:
            await self.aclose()
            if not isinstance(failure, Exception):
                raise failure
            raise SandboxRefused(
                f"sandbox workers could not be started: {_describe(failure)}",
                code=POOL_UNAVAILABLE,
            ) from failure
        for slot in self._slots:
            self._idle.put(slot)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every worker (killing hung ones after a short grace) and reap them all."""
        if self._state in ("closing", "closed"):
            return
        self._state = "closing"
        self._idle.close()
        for task in self._spawners:
            task.cancel()
        await asyncio.gather(*self._spawners, return_exceptions=True)
        workers = [slot.worker for slot in self._slots if slot.worker is not None]
        await asyncio.gather(
            *(self._stop(w, grace=_CLOSE_GRACE_S) for w in workers), return_exceptions=True
        )
        while self._reapers:
            await asyncio.gather(*self._reapers, return_exceptions=True)
        for slot in self._slots:
            slot.worker = None
        self._state = "closed"

    # --- applying -------------------------------------------------------------------------------

    async def apply(
        self,
        collection: str,
        record_id: str,
        state: bytes,
        updates: Sequence[bytes],
        *,
        fault: Fault | None = None,
    ) -> SandboxResult:
        """Apply ``updates`` to the record at ``state`` in a worker; raises `SandboxRefused`."""
        outcome = (await self.apply_many([Job(collection, record_id, state, updates, fault)]))[0]
        if isinstance(outcome, SandboxRefused):
            raise outcome
        return outcome

    async def apply_many(self, jobs: Sequence[Job]) -> list[SandboxResult | SandboxFailure]:
        """Run ``jobs`` in batches spread over the workers; one outcome per job, in order."""
        results: list[SandboxResult | SandboxFailure | None] = [None] * len(jobs)
        if not jobs:
            return []
        indexed = [(i, job) for i, job in enumerate(jobs) if job.kept is None]
        per_chunk = math.ceil(len(indexed) / self.size) if indexed else 1
        chunks: list[tuple[int | None, list[tuple[int, Job]]]] = [
            (None, indexed[i : i + per_chunk]) for i in range(0, len(indexed), per_chunk)]
        by_slot: dict[int, list[tuple[int, Job]]] = {}
        for i, job in enumerate(jobs):
            if job.kept is not None:  # always on the worker that keeps the record
                slot = zlib.crc32(job.kept.key.encode()) % self.size
                by_slot.setdefault(slot, []).append((i, job))
        chunks += list(by_slot.items())
        self._in_flight += len(jobs)
        try:
            if len(chunks) == 1:
                await self._run(*chunks[0], results)  # no task: the common single-chunk case
            else:
                await asyncio.gather(*(self._run(slot, chunk, results)
                                       for slot, chunk in chunks))
        finally:
            self._in_flight -= len(jobs)
        out: list[SandboxResult | SandboxFailure] = []
        for outcome in results:
            assert outcome is not None
            out.append(outcome)
        return out

    async def _run(
        self, want: int | None, jobs: list[tuple[int, Job]],
        results: list[SandboxResult | SandboxFailure | None],
    ) -> None:
        """Run a chunk (on slot ``want``, or any) until every job has an outcome, moving on
        after a worker failed; jobs whose worker no longer kept their state go again with it."""
        while jobs:
            slot = await self._acquire(want)
            if slot is None:
                for i, _ in jobs:
                    results[i] = self._closed_failure()
                return
            done = await self._run_on(slot, jobs, results)
            missed = [(i, _with_state(job)) for i, job in jobs[:done] if results[i] is _MISS]
            self._kept_missed += len(missed)
            jobs = missed + jobs[done:]

    async def _reply_within_budget(self, worker: _Worker, *, drain: bool) -> Any:
        """The worker's next reply; TimeoutError once it has spent ``timeout_s`` of CPU waiting
        for it, or ``WALL_FACTOR`` times that in all."""

        async def receive() -> Any:
            if drain:
                await worker.writer.drain()
            return await _read_message(worker.reader)

        reading = asyncio.ensure_future(receive())
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.timeout_s * WALL_FACTOR
        cpu_start = _cpu_seconds(worker.pid)
        try:
            while True:
                wait = min(self.timeout_s, give_up - loop.time())
                done, _ = await asyncio.wait({reading}, timeout=max(wait, 0.0))
                if done:
                    return reading.result()
                cpu_now = _cpu_seconds(worker.pid)
                if (loop.time() >= give_up or cpu_start is None or cpu_now is None
                        or cpu_now - cpu_start >= self.timeout_s):
                    raise TimeoutError
        finally:
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading

    async def _run_on(
        self,
        slot: _Slot,
        jobs: list[tuple[int, Job]],
        results: list[SandboxResult | SandboxFailure | None],
    ) -> int:
        """Send ``jobs`` to the slot's worker in one message; returns how many got an outcome."""
        worker = slot.worker
        assert worker is not None
        self._batch_seq += 1
        seq = self._batch_seq
        payload = _dumps(("run", seq, [self._wire_job(job) for _, job in jobs]))
        finished = 0
        try:
            worker.writer.write(_HEADER.pack(len(payload)) + payload)
            for k, (i, _) in enumerate(jobs):
                reply = await self._reply_within_budget(worker, drain=k == 0)
                outcome = _outcome(reply, seq, k, worker.pid)
                results[i] = outcome if outcome is _MISS else self._count(outcome)
                finished += 1
                if isinstance(outcome, SandboxRefused) and outcome.code == WORKER_PANICKED:
                    await self._retire(slot, worker, grace=_EXIT_GRACE_S, why="panicked")
                    return finished
        except TimeoutError:
            if self._state != "open":
                results[jobs[finished][0]] = self._closed_failure()
                return finished + 1
            exitcode = await self._retire(slot, worker, grace=0.0, why="timeout")
            results[jobs[finished][0]] = self._count(
                SandboxRefused(
                    f"sandbox worker (pid {worker.pid}) gave no reply within its budget "
                    f"({self.timeout_s:g} s of CPU, {self.timeout_s * WALL_FACTOR:g} s in all) "
                    f"and was stopped ({_exit_text(exitcode)})",
                    code=WORKER_TIMEOUT,
                    pid=worker.pid,
                )
            )
            return finished + 1
        except (asyncio.IncompleteReadError, OSError, _BadMessage) as exc:
            if self._state != "open":
                results[jobs[finished][0]] = self._closed_failure()
                return finished + 1
            exitcode = await self._retire(slot, worker, grace=_EXIT_GRACE_S, why="crashed")
            what = "sent an invalid reply" if isinstance(exc, _BadMessage) else "died"
            results[jobs[finished][0]] = self._count(
                SandboxRefused(
                    f"sandbox worker (pid {worker.pid}) {what} while applying the update "
                    f"({_exit_text(exitcode)})",
                    code=WORKER_CRASHED,
                    pid=worker.pid,
                )
            )
            return finished + 1
        except BaseException:
            # Cancelled mid-job: replies may still come, so this worker cannot be reused.
            self._track(self._reapers, self._retire(slot, worker, grace=0.0, why="cancelled"))
            raise
        self._idle.put(slot)
        return finished

    def _wire_job(self, job: Job) -> tuple[Any, ...]:
        fault = job.fault if self.allow_test_faults else None
        kept = job.kept
        keep = None if kept is None else (
            str(kept.key), kept.base, [bytes(u) for u in kept.trusted], int(kept.after))
        return (
            str(job.collection),
            str(job.record_id),
            None if kept is not None and kept.base is not None else bytes(
                job.state() if callable(job.state) else job.state),
            [bytes(u) for u in job.updates],
            fault,
            keep,
            bool(job.each),
        )

    # --- workers --------------------------------------------------------------------------------

    async def _acquire(self, want: int | None = None) -> _Slot | None:
        """An idle slot (slot ``want``, or any) with a live worker, or None once the pool is
        closing."""
        while True:
            if self._state != "open":
                return None
            slot = await self._idle.get(want)
            if slot is None:
                return None
            worker = slot.worker
            if worker is not None and worker.proc.exitcode is None:
                return slot
            # Died while idle (killed from outside): not any job's fault; replace and look again.
            if worker is not None:
                await self._retire(slot, worker, grace=0.0, why="died_idle")
            else:
                self._track(self._spawners, self._replace(slot))

    async def _spawn(self, index: int) -> _Worker:
        """Start one worker and wait until it has loaded the CRDT library and said ready."""
        parent_sock, child_sock = socket.socketpair()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child_sock, self.allow_test_faults, self.max_update_bytes),
            name=f"velocity-sandbox-{index}",
            daemon=True,
        )
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                proc.start()
            finally:
                child_sock.close()
            reader, writer = await asyncio.open_connection(sock=parent_sock)
            hello = await _read_message(reader)
            if hello != ("ready", proc.pid):
                raise _BadMessage(f"unexpected greeting {hello!r:.80}")
            assert proc.pid is not None
            return _Worker(proc, reader, writer, proc.pid)
        except BaseException:
            if writer is not None:
                writer.close()
            else:
                parent_sock.close()
            if proc.pid is not None:
                with contextlib.suppress(ValueError, OSError):
                    proc.kill()
                await asyncio.shield(self._track(self._reapers, _reap(proc)))
            raise

    async def _retire(self, slot: _Slot, worker: _Worker, *, grace: float,
                      why: str) -> int | None:
        """Stop a failed worker, start its replacement (unless closing); returns the exit code."""
        pid = worker.proc.pid
        exitcode = await self._stop(worker, grace=grace)
        # a job its caller gave up on (a session that ended) is no fault: info, not a warning
        log.log(logging.INFO if why == "cancelled" else logging.WARNING,
                "sandbox worker retired", extra={"slot": slot.index, "pid": pid,
                                                 "exitcode": exitcode, "why": why})
        if slot.worker is worker:
            slot.worker = None
            if self._state == "open":
                self._track(self._spawners, self._replace(slot))
        return exitcode

    async def _stop(self, worker: _Worker, *, grace: float) -> int | None:
        """Close the channel, wait up to ``grace`` for the worker to exit, then kill and reap it."""
        if worker.stopping is None:
            worker.stopping = asyncio.ensure_future(self._stop_once(worker, grace))
            self._reapers.add(worker.stopping)
            worker.stopping.add_done_callback(self._reapers.discard)
        return await asyncio.shield(worker.stopping)

    @staticmethod
    async def _stop_once(worker: _Worker, grace: float) -> int | None:
        worker.writer.close()
        exitcode = await _wait_exit(worker.proc, grace) if grace > 0 else worker.proc.exitcode
        if exitcode is None:
            with contextlib.suppress(OSError, ValueError):
                worker.proc.kill()
        return await _reap(worker.proc)

    async def _replace(self, slot: _Slot) -> None:
        """Start a fresh worker for ``slot`` (retrying with back-off), then put it back to work."""
        delay = 0.2
        while self._state == "open":
            try:
                worker = await self._spawn(slot.index)
            except Exception as exc:
                self._spawn_failures += 1
                log.error("sandbox worker failed to start; retrying",
                          extra={"slot": slot.index, "error": str(exc), "retry_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            slot.worker = worker
            self._restarts += 1
            self._idle.put(slot)
            return

    def _track(self, tasks: set[asyncio.Task[Any]], coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    # --- accounting -----------------------------------------------------------------------------

    def _count(self, outcome: SandboxResult | SandboxFailure) -> SandboxResult | SandboxFailure:
        self._jobs += 1
        if isinstance(outcome, SandboxResult):
            self._succeeded += 1
        else:
            self._failures[outcome.code] += 1
        return outcome

    def _closed_failure(self) -> SandboxFailure:
        failure = SandboxRefused("the sandbox pool is closed (or not started)", code=POOL_CLOSED)
        self._count(failure)
        return failure

    @property
    def pids(self) -> list[int | None]:
        """The worker process id of each slot (None while a slot's worker is being replaced)."""
        return [slot.worker.pid if slot.worker else None for slot in self._slots]

    @property
    def stats(self) -> SandboxStats:
        ready = sum(
            1
            for s in self._slots
            if s.worker is not None and s.worker.stopping is None and self._state == "open"
        )
        return SandboxStats(
            size=self.size,
            workers_ready=ready,
            in_flight=self._in_flight,
            jobs=self._jobs,
            succeeded=self._succeeded,
            failures=dict(self._failures),
            restarts=self._restarts,
            spawn_failures=self._spawn_failures,
            kept_missed=self._kept_missed,
        )

    def stats_dict(self) -> dict[str, object]:
        """`stats` as plain values (for JSON)."""
        return dataclasses.asdict(self.stats)


# --- messages (both sides) ----------------------------------------------------------------------


class _PlainUnpickler(pickle.Unpickler):
    """Loads plain values only: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except Exception as exc:
        raise _BadMessage(f"unreadable message: {type(exc).__name__}") from None


def _cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user and system) process ``pid`` has used, from /proc; None where unknown
    (then a job's budget is its wall time alone)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


async def _read_message(reader: asyncio.StreamReader) -> Any:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > _MAX_MESSAGE_BYTES:
        raise _BadMessage(f"message of {size} bytes")
    return _loads(await reader.readexactly(size))


_MISS = SandboxResult(b"", {}, False, 0)
"""The worker did not keep the state a `Kept` job named: the pool sends it again with it."""


def _with_state(job: Job) -> Job:
    """``job`` sent with its whole state (its worker did not keep the one it named)."""
    assert job.kept is not None
    return dataclasses.replace(job, kept=Kept(job.kept.key, None, (), job.kept.after))


def _outcome(reply: Any, seq: int, k: int, pid: int) -> SandboxResult | SandboxFailure:
    """Check a worker's reply to job ``k`` of batch ``seq`` and turn it into an outcome."""
    if not (isinstance(reply, tuple) and len(reply) >= 3 and reply[:2] == (seq, k)):
        raise _BadMessage("reply out of sequence")
    match reply[2:]:
        case ("miss",):
            return _MISS
        case ("ok", bytes() as state, dict() as content, bool() as pending, list() as steps):
            return SandboxResult(state, content, pending, pid, tuple(steps))
        case ("stopped", list() as steps, str() as message) if steps:
            content, pending = steps[-1]
            return SandboxResult(b"", content, pending, pid, tuple(steps),
                                 f"update could not be applied: {message}")
        case ("panicked", str() as message):
            return SandboxRefused(
                f"CRDT library panicked in sandbox worker (pid {pid}): {message}",
                code=WORKER_PANICKED,
                pid=pid,
            )
        case ("failed", str() as message):
            return SandboxRefused(
                f"update could not be applied: {message}", code=APPLY_FAILED, pid=pid
            )
    raise _BadMessage("malformed reply")


async def _wait_exit(proc: BaseProcess, limit: float) -> int | None:
    """Poll (without blocking the loop) until ``proc`` exits or ``limit`` seconds pass."""
    deadline = time.monotonic() + limit
    delay = 0.001
    while True:
        exitcode = proc.exitcode  # waitpid(WNOHANG): reaps once it has exited
        if exitcode is not None or time.monotonic() >= deadline:
            return exitcode
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


async def _reap(proc: BaseProcess) -> int | None:
    """Wait for a killed process to exit, reap it and release its handles."""
    exitcode = await _wait_exit(proc, _REAP_LIMIT_S)
    if exitcode is not None:
        proc.close()
    return exitcode


def _exit_text(exitcode: int | None) -> str:
    if exitcode is None:
        return "it did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}, exit code {exitcode}"
    return f"exit code {exitcode}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:_MESSAGE_CHARS]}"


# --- the worker process -------------------------------------------------------------------------


def _worker_main(sock: socket.socket, allow_test_faults: bool, max_update_bytes: int) -> None:
    """A worker's entry point: load the CRDT library once, then serve batches until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the hub, which stops us
    from schema import collection
    from sync.record import RecordDoc

    kept: OrderedDict[str, tuple[int, RecordDoc, int]] = OrderedDict()
    """key → (the state's name, the live document, bytes it took), least recent first."""
    kept_bytes = 0

    def run(job: tuple[Any, ...]) -> tuple[Any, ...]:
        nonlocal kept_bytes
        coll_name, record_id, state, updates, fault, keep, each = job
        steps: list[tuple[dict[str, Any], bool]] = []
        try:
            if fault is not None and allow_test_faults:
                _inject_fault(fault)
            size = 0
            if keep is not None:
                key, base, trusted, after = keep
                held = kept.pop(key, None)
                if held is not None:
                    kept_bytes -= held[2]
                if state is None:
                    if held is None or held[0] != base:
                        return ("miss",)
                    _, doc, size = held
                    for update in trusted:  # from the hub's log: judged, in order
                        doc.apply(update)  # decoded: no restore point (a copy of the state)
                        size += len(update)
            if state is not None:
                doc = RecordDoc(collection(coll_name), record_id, state=state or None)
                size = len(state)
            for update in updates:
                try:
                    doc.apply(update, max_bytes=max_update_bytes)
                except Exception as exc:
                    if not steps or _panic_in(exc) is not None:
                        raise
                    return ("stopped", steps, _describe(exc))  # the document is not kept
                size += len(update)
                if each:
                    steps.append((doc.content(), doc.has_pending()))
            pending = doc.has_pending()
            if keep is None:
                return ("ok", doc.encode_state(), doc.content(), pending, steps)
            if not pending:  # held updates never wait in a kept document
                kept[key] = (after, doc, size)
                kept_bytes += size
                while kept_bytes > KEPT_BYTES and len(kept) > 1:
                    kept_bytes -= kept.popitem(last=False)[1][2]
            return ("ok", b"", doc.content(), pending, steps)
        except BaseException as exc:  # the library's panics are BaseExceptions
            panic = _panic_in(exc)
            if panic is not None:
                return ("panicked", _describe(panic))
            return ("failed", _describe(exc))

    rfile = sock.makefile("rb")
    try:
        _send(sock, ("ready", os.getpid()))
        while True:
            header = rfile.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return  # the hub closed the channel
            (size,) = _HEADER.unpack(header)
            _, seq, jobs = _loads(rfile.read(size))
            for k, job in enumerate(jobs):
                reply = run(job)
                try:
                    data = _dumps((seq, k, *reply))
                except Exception as exc:  # e.g. content nested too deep to pickle
                    reply = ("failed", f"result not serialisable: {_describe(exc)}")
                    data = _dumps((seq, k, *reply))
                sock.sendall(_HEADER.pack(len(data)) + data)
                if reply[0] == "panicked":
                    return  # the library's state may be poisoned: let the hub start a fresh one
    except (OSError, _BadMessage):
        return
    finally:
        rfile.close()
        sock.close()


def _send(sock: socket.socket, value: Any) -> None:
    data = _dumps(value)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _panic_in(exc: BaseException) -> BaseException | None:
    """The first non-``Exception`` in the chain (a panic wrapped by `RecordDoc` counts too)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if not isinstance(current, Exception):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _inject_fault(fault: str) -> None:
    """Act out a test fault (see `FAULTS`)."""
    if fault == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)
    elif fault == "exit":
        os._exit(3)
    elif fault == "hang":
        while True:  # a crafted update looping in the library: burns CPU
            pass
    elif fault == "stall":
        while True:  # stuck without using CPU
            time.sleep(3600)
    elif fault == "panic":
        raise InjectedPanic("injected test panic")
    elif fault == "slow":
        time.sleep(0.5)
