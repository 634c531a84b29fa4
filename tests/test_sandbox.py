"""The apply sandbox: untrusted updates run in worker processes; a crash kills a worker, not us."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import time

import pytest

from core.errors import StorageError, UnsafeUpdate
from schema import collection
from sync.record import RecordDoc
from sync.sandbox import (
    UPDATE_CODES,
    WALL_FACTOR,
    InjectedPanic,
    Job,
    Kept,
    SandboxPool,
    SandboxRefused,
    SandboxResult,
    _panic_in,
)

pytestmark = pytest.mark.anyio

PEOPLE = collection("people")


def _base() -> tuple[bytes, list[bytes]]:
    """A person's state (client 1) and two later edits from another replica (client 2)."""
    a = RecordDoc(PEOPLE, "p1", client_id=1)
    a.write({"tenant_id": "t1", "full_name": "Zara Khan", "city": "Dubai"})
    state = a.encode_state()
    b = RecordDoc(PEOPLE, "p1", client_id=2, state=state)
    first = b.write({"city": "Mumbai", "notes": "Wants a sea view."})
    return state, [first, b.write({"tags": ["vip"]})]


STATE, UPDATES = _base()


def _in_process(state: bytes, updates: list[bytes]) -> tuple[bytes, dict[str, object]]:
    doc = RecordDoc(PEOPLE, "p1", state=state or None)
    for update in updates:
        doc.apply(update)
    return doc.encode_state(), doc.content()


def _deep_nesting_crasher(depth: int = 100_000) -> bytes:
    """Real hostile bytes: an Any value nested ``depth`` arrays deep under fields["a"].

    pycrdt 0.14.13 overflows its stack decoding it (SIGSEGV) from about 20,000 levels.
    """

    def var_string(s: str) -> bytes:
        return bytes([len(s)]) + s.encode()

    item = bytes([0x28, 1]) + var_string("fields") + var_string("a")  # ContentAny, parentSub
    content = bytes([1]) + bytes([117, 1]) * depth + bytes([126])  # [[[...[null]...]]]
    return bytes([1, 1, 7, 0]) + item + content + b"\x00"


def _reaped(pid: int) -> bool:
    """True once ``pid`` no longer exists (a zombie would still answer signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _other_children() -> list[int]:
    """Child processes (zombies included) other than multiprocessing's resource tracker.

    Empty when psutil is not installed (``multiprocessing.active_children`` still checks).
    """
    try:
        import psutil
    except ImportError:
        return []

    def is_tracker(child: psutil.Process) -> bool:
        try:
            return any("resource_tracker" in part for part in child.cmdline())
        except psutil.Error:  # a zombie has no command line
            return False

    return [c.pid for c in psutil.Process().children(recursive=True) if not is_tracker(c)]


async def test_pool_apply_matches_in_process() -> None:
    expected_state, expected_content = _in_process(STATE, UPDATES)
    async with SandboxPool(2) as pool:
        result = await pool.apply("people", "p1", STATE, UPDATES)
        batch = await pool.apply_many(
            [Job("people", "p1", STATE, UPDATES[:n]) for n in range(len(UPDATES) + 1)] * 3
        )
    assert isinstance(result, SandboxResult)
    assert result.state == expected_state
    assert result.content == expected_content
    assert result.content["city"] == "Mumbai" and result.content["tags"] == ["vip"]
    assert not result.pending
    for n, outcome in enumerate(batch):
        assert isinstance(outcome, SandboxResult)
        assert (outcome.state, outcome.content) == _in_process(STATE, UPDATES[: n % 3])
    assert len({o.pid for o in batch}) == 2  # the batch was spread over both workers


async def test_a_kept_record_stays_in_its_worker_and_a_lost_one_is_sent_again() -> None:
    """Jobs of a kept record go to one worker, which applies them to the document it kept
    (the state is not sent) after the trusted updates named; a job naming a state the worker
    does not keep (another name, or the worker was replaced) is sent again with its state."""
    first, second = UPDATES
    after_first = _in_process(STATE, [first])[0]
    async with SandboxPool(2) as pool:
        (made,) = await pool.apply_many(
            [Job("people", "p1", STATE, (first,), kept=Kept("t1/people/p1", None, (), 1))])
        assert isinstance(made, SandboxResult) and made.state == b""
        assert made.content == _in_process(STATE, [first])[1]
        (kept,) = await pool.apply_many(  # the state is not sent: b"" would be an empty doc
            [Job("people", "p1", b"", (second,), kept=Kept("t1/people/p1", 1, (), 2))])
        assert isinstance(kept, SandboxResult) and kept.pid == made.pid
        assert kept.content == _in_process(STATE, UPDATES)[1]
        assert pool.stats.kept_missed == 0
        (lost,) = await pool.apply_many(
            [Job("people", "p1", after_first, (second,), kept=Kept("t1/people/p1", 1, (), 3))])
        assert isinstance(lost, SandboxResult) and pool.stats.kept_missed == 1
        assert lost.content == _in_process(STATE, UPDATES)[1]
        os.kill(lost.pid, 9)  # the worker and what it kept are gone
        await asyncio.sleep(0.5)  # dead before the next job (a death mid-job is a crash)
        (again,) = await pool.apply_many(
            [Job("people", "p1", _in_process(STATE, UPDATES)[0], (),
                 kept=Kept("t1/people/p1", 3, (first, second), 4))])
        assert isinstance(again, SandboxResult) and again.pid != lost.pid
        assert again.content == _in_process(STATE, UPDATES)[1]
        assert pool.stats.kept_missed == 2


async def test_a_kept_record_applies_log_updates_and_reports_a_gap_as_pending() -> None:
    """A kept job applies the trusted updates from the hub's log and then the job's own, both
    natively; an update pycrdt does not integrate whole (a predecessor missing) is reported
    pending, and the document it was applied to is not kept."""
    first, second = UPDATES
    async with SandboxPool(1) as pool:
        (made,) = await pool.apply_many(
            [Job("people", "p1", STATE, (), kept=Kept("t1/people/p1", None, (), 1))])
        assert isinstance(made, SandboxResult) and not made.pending
        (caught_up,) = await pool.apply_many(  # ``first`` came through the log meanwhile
            [Job("people", "p1", b"", (second,), kept=Kept("t1/people/p1", 1, (first,), 2))])
        assert isinstance(caught_up, SandboxResult) and not caught_up.pending
        assert caught_up.content == _in_process(STATE, UPDATES)[1]
        (gap,) = await pool.apply_many(  # ``second`` without ``first``: held back
            [Job("people", "p1", STATE, (second,), kept=Kept("t1/people/p2", None, (), 3))])
        assert isinstance(gap, SandboxResult) and gap.pending
        (gone,) = await pool.apply_many(
            [Job("people", "p1", STATE, (), kept=Kept("t1/people/p2", 3, (), 4))])
        assert isinstance(gone, SandboxResult) and pool.stats.kept_missed == 1


async def test_update_waiting_for_predecessors_is_reported_pending() -> None:
    async with SandboxPool(1) as pool:
        result = await pool.apply("people", "p1", STATE, UPDATES[1:])  # skips UPDATES[0]
    assert result.pending
    assert "tags" not in result.content or result.content["tags"] == []


@pytest.mark.parametrize(
    ("fault", "code", "says"),
    [
        ("segfault", "worker_crashed", "SIGSEGV"),
        ("exit", "worker_crashed", "exit code 3"),
        ("panic", "worker_panicked", "InjectedPanic"),
        ("hang", "worker_timeout", "0.5 s of CPU"),
    ],
)
async def test_fault_is_refused_and_worker_replaced(fault: str, code: str, says: str) -> None:
    async with SandboxPool(1, 0.5, allow_test_faults=True) as pool:
        [before] = pool.pids
        assert before is not None
        with pytest.raises(SandboxRefused) as caught:
            await pool.apply("people", "p1", STATE, UPDATES, fault=fault)  # type: ignore[arg-type]
        assert caught.value.code == code
        assert isinstance(caught.value, UnsafeUpdate) and caught.value.blames_update
        assert says in str(caught.value) and caught.value.pid == before
        assert _reaped(before)
        result = await pool.apply("people", "p1", STATE, UPDATES)
        assert result.pid != before and pool.pids == [result.pid]
        assert result.content == _in_process(STATE, UPDATES)[1]
        stats = pool.stats
    assert stats.failures == {code: 1} and stats.restarts == 1
    assert stats.jobs == 2 and stats.succeeded == 1


async def test_real_crasher_bytes_are_refused_and_the_pool_keeps_serving() -> None:
    # Whichever layer stops them (the record engine's decoder, or the worker dying of SIGSEGV
    # inside pycrdt), the caller only ever sees a refusal.
    async with SandboxPool(1) as pool:
        with pytest.raises(SandboxRefused) as caught:
            await pool.apply("people", "p1", STATE, [_deep_nesting_crasher()])
        assert caught.value.code in ("apply_failed", "worker_crashed")
        if caught.value.code == "worker_crashed":
            assert "SIGSEGV" in str(caught.value)
        result = await pool.apply("people", "p1", STATE, UPDATES)
    assert result.content["city"] == "Mumbai"


async def test_crash_does_not_disturb_a_job_on_another_worker() -> None:
    async with SandboxPool(2, allow_test_faults=True) as pool:
        slow = asyncio.ensure_future(pool.apply("people", "p1", STATE, UPDATES, fault="slow"))
        await asyncio.sleep(0.05)  # the slow job holds one worker ...
        with pytest.raises(SandboxRefused) as caught:  # ... the crash hits the other
            await pool.apply("people", "p1", STATE, UPDATES, fault="segfault")
        assert not slow.done()
        result = await slow
        assert result.content == _in_process(STATE, UPDATES)[1]
        assert caught.value.pid != result.pid and result.pid in pool.pids
    assert caught.value.code == "worker_crashed"


async def test_timeout_kills_hung_worker_promptly() -> None:
    async with SandboxPool(2, 0.5, allow_test_faults=True) as pool:
        started = time.monotonic()
        with pytest.raises(SandboxRefused) as caught:
            await pool.apply("people", "p1", STATE, UPDATES, fault="hang")
        elapsed = time.monotonic() - started
        assert caught.value.code == "worker_timeout"
        assert 0.5 <= elapsed < 0.5 * WALL_FACTOR + 1
        assert caught.value.pid is not None and _reaped(caught.value.pid)


async def test_a_worker_that_waits_without_using_cpu_is_given_time() -> None:
    """A job over its CPU budget in wall time only (a loaded machine, a worker waiting for a
    core) completes; the worker is not killed."""
    async with SandboxPool(1, 0.2, allow_test_faults=True) as pool:
        [before] = pool.pids
        result = await pool.apply("people", "p1", STATE, UPDATES, fault="slow")  # sleeps 0.5 s
        assert result.content == _in_process(STATE, UPDATES)[1]
        assert pool.pids == [before] and pool.stats.restarts == 0


async def test_a_stalled_worker_is_killed_at_the_wall_time_budget() -> None:
    async with SandboxPool(1, 0.2, allow_test_faults=True) as pool:
        started = time.monotonic()
        with pytest.raises(SandboxRefused) as caught:
            await pool.apply("people", "p1", STATE, UPDATES, fault="stall")
        elapsed = time.monotonic() - started
    assert caught.value.code == "worker_timeout"
    assert 0.2 * WALL_FACTOR <= elapsed < 0.2 * WALL_FACTOR + 2


async def test_batch_refuses_only_the_faulty_job() -> None:
    jobs = [Job("people", "p1", STATE, UPDATES) for _ in range(7)]
    jobs[3] = Job("people", "p1", STATE, UPDATES, fault="exit")
    jobs[5] = Job("people", "p1", STATE, [b"\xff\xff\xff\xff"])
    async with SandboxPool(1, allow_test_faults=True) as pool:
        outcomes = await pool.apply_many(jobs)
        stats = pool.stats
    codes = [o.code if isinstance(o, SandboxRefused) else "ok" for o in outcomes]
    assert codes == ["ok", "ok", "ok", "worker_crashed", "ok", "apply_failed", "ok"]
    pids = [o.pid for o in outcomes]
    assert pids[0] == pids[1] == pids[2] == pids[3] != pids[4] == pids[6]
    assert stats.jobs == 7 and stats.restarts == 1


async def test_garbage_is_refused_never_crashes_the_caller() -> None:
    rng = random.Random(20240611)
    garbage = [b"\xff\xff\xff\xff", b"\x01", b"not a yjs update at all", b"\x01\x01\x07\x00\x28"]
    garbage += [rng.randbytes(rng.randint(1, 64)) for _ in range(200)]
    async with SandboxPool(2) as pool:
        for blob in garbage[:4]:
            with pytest.raises(SandboxRefused) as caught:
                await pool.apply("people", "p1", STATE, [blob])
            assert caught.value.code in ("apply_failed", "worker_panicked")
        outcomes = await pool.apply_many([Job("people", "p1", STATE, [b]) for b in garbage])
    assert len(outcomes) == len(garbage)
    refused = [o for o in outcomes if isinstance(o, SandboxRefused)]
    assert all(o.code in UPDATE_CODES for o in refused)
    assert len(refused) > len(garbage) // 2  # most random bytes do not even decode


async def test_production_pool_ignores_test_faults() -> None:
    async with SandboxPool(1) as pool:
        result = await pool.apply("people", "p1", STATE, UPDATES, fault="exit")
        again = await pool.apply("people", "p1", STATE, UPDATES, fault="segfault")
    assert result.pid == again.pid
    assert pool.stats.failures == {}


async def test_cancelled_caller_does_not_leave_a_stale_reply() -> None:
    async with SandboxPool(1, allow_test_faults=True) as pool:
        slow = asyncio.ensure_future(pool.apply("people", "p1", b"", [], fault="slow"))
        await asyncio.sleep(0.1)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        result = await pool.apply("people", "p1", STATE, UPDATES)
    assert result.content["city"] == "Mumbai"  # not the empty record of the cancelled job


async def test_exit_stops_every_worker_even_hung_ones() -> None:
    pool = SandboxPool(2, 30.0, allow_test_faults=True)
    async with pool:
        pids = [p for p in pool.pids if p is not None]
        hung = asyncio.ensure_future(pool.apply("people", "p1", STATE, UPDATES, fault="hang"))
        await asyncio.sleep(0.1)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0
    with pytest.raises(SandboxRefused) as caught:
        await hung
    assert caught.value.code == "pool_closed" and not caught.value.blames_update
    assert len(pids) == 2 and all(_reaped(pid) for pid in pids)
    assert multiprocessing.active_children() == []
    assert _other_children() == []
    with pytest.raises(SandboxRefused, match="closed"):
        await pool.apply("people", "p1", STATE, UPDATES)


def test_panic_wrapped_by_the_record_engine_still_counts_as_panic() -> None:
    try:
        try:
            raise InjectedPanic("boom")
        except BaseException as exc:
            raise StorageError("CRDT library refused the update") from exc
    except StorageError as wrapped:
        assert isinstance(_panic_in(wrapped), InjectedPanic)
    assert _panic_in(ValueError("plain")) is None


def test_unknown_fault_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown test fault"):
        Job("people", "p1", b"", [], fault="meltdown")  # type: ignore[arg-type]
