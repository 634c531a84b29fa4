"""Who is to blame at the sync endpoint: a refusal is final, only bytes no honest client sends
count against a device, and the hub's own trouble (a busy sandbox, a database error, a damaged
stored document) is never the device's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pycrdt as Y
import pytest
import websockets

from core.identity import Principal, Role
from hub.gate import Admitted, Deferred, Gate, Refused
from hub.server import HubServer
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc
from sync.sandbox import Job, SandboxRefused, SandboxResult
from tests.hubkit import pair_device, running_hub

pytestmark = pytest.mark.anyio
PERSON = {"tenant_id": "t1", "full_name": "Zara Khan"}
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # one event loop for the module, so its tests share one hub


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[HubServer]:
    """One hub for these tests (each uses its own devices, client ids and records)."""
    async with running_hub(max_offences=10, throttle_after=1, throttle_interval_s=30) as hub:
        yield hub


async def test_a_refused_update_id_stays_refused_after_what_it_lacked_arrives(
        server: HubServer) -> None:
    dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 500)
    await dev.connect()
    doc = dev.doc("people/p-final")
    create = doc.write(PERSON)
    edit = doc.write({"city": "Pune"})
    await dev.push([p.PushItem("u-edit", doc.guid, edit)])  # before its predecessor
    await dev.wait_for(lambda: "u-edit" in dev.refusals)
    assert dev.refusals["u-edit"].reason == "gap"
    await dev.push([p.PushItem("u-create", doc.guid, create)])
    await dev.wait_for(lambda: "u-create" in dev.acks)
    # The device rebuilt its document without the refused edit; the resend timer still
    # sends the old id, now with every predecessor held: the answer is the same refusal.
    dev.refusals.clear()
    await dev.push([p.PushItem("u-edit", doc.guid, edit)])
    await dev.wait_for(lambda: "u-edit" in dev.refusals or "u-edit" in dev.acks)
    assert "u-edit" not in dev.acks
    assert dev.refusals["u-edit"].reason == "gap"
    city = await server.hub.db.pool.fetchval(
        "SELECT city FROM crm_people WHERE tenant_id = 't1' AND id = 'p-final'")
    assert city in (None, "")
    await dev.close()


async def test_sandbox_timeouts_are_retried_later_never_refused_or_charged(
        server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = server.hub.sandbox
    real = sandbox.apply_many
    overloaded = True

    async def busy(jobs: Sequence[Job]) -> list[SandboxResult | SandboxRefused]:
        if overloaded:  # every worker too slow for its deadline, as under heavy load
            return [SandboxRefused("no reply within 2 s", code="worker_timeout")
                    for _ in jobs]
        return await real(jobs)

    monkeypatch.setattr(sandbox, "apply_many", busy)
    dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 510)
    await dev.connect()
    items = [p.PushItem(f"u-{n}", f"people/p-busy{n}",
                        dev.doc(f"people/p-busy{n}").write(PERSON)) for n in range(5)]
    for item in items:  # five batches: five chances to be charged
        await dev.push([item])
    await dev.wait_for(lambda: all(i.update_id in dev.retries for i in items))
    assert dev.refusals == dev.retries and not dev.acks
    assert {r.reason for r in dev.retries.values()} == {"worker_timeout"}
    assert await server.hub.db.pool.fetchval(
        "SELECT offences FROM hub_devices WHERE device_id = $1", dev.device_id) == 0
    overloaded = False
    dev.refusals.clear()
    dev.retries.clear()
    await dev.push(items)  # as the device does after a pause (the hub recorded nothing)
    await dev.wait_for(lambda: all(i.update_id in dev.acks for i in items))
    assert not dev.refusals
    await dev.close()


async def _judge_with(server: HubServer, fail: str) -> tuple[Admitted | Refused | Deferred,
                                                             list[int]]:
    """Judge one honest create while the sandbox fails its jobs as ``fail`` says: "once" (the
    first run only), "update" (every run of the update, never the document alone) or
    "document" (every job, the document alone too)."""
    sandbox = server.hub.sandbox
    real = sandbox.apply_many
    runs: list[int] = []

    async def faulty(jobs: Sequence[Job]) -> list[SandboxResult | SandboxRefused]:
        runs.append(len(jobs))
        outcomes = await real(jobs)
        crashed = SandboxRefused("sandbox worker died", code="worker_crashed")
        return [crashed if fail == "document" or (fail == "once" and len(runs) == 1)
                or (fail == "update" and job.updates) else outcome
                for job, outcome in zip(jobs, outcomes, strict=True)]

    sandbox.apply_many = faulty  # type: ignore[method-assign]
    try:
        doc = RecordDoc(collection("people"), f"p-{fail}", client_id=520)
        (verdict,) = await server.hub.gate.admit_batch(
            DIRECTOR, {520}, [(doc.guid, doc.write(PERSON), f"u-{fail}")])
    finally:
        sandbox.apply_many = real  # type: ignore[method-assign]
    assert isinstance(verdict, Admitted | Refused | Deferred)
    return verdict, runs


async def test_a_sandbox_crash_is_the_updates_fault_only_when_it_repeats_on_a_sound_document(
        server: HubServer) -> None:
    verdict, runs = await _judge_with(server, "once")
    assert isinstance(verdict, Admitted) and runs == [1, 2]  # run again beside the document
    verdict, _ = await _judge_with(server, "update")
    assert isinstance(verdict, Refused) and verdict.hostile
    assert verdict.error.code == "worker_crashed"
    verdict, _ = await _judge_with(server, "document")
    assert isinstance(verdict, Deferred) and verdict.error.code == "stored_invalid"


async def test_throttling_is_per_device_and_survives_a_reconnect(server: HubServer) -> None:
    dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 530)
    await dev.connect()
    await dev.push([p.PushItem("bad-1", "people/p-thr", b"\x01\x01\x90\x03\x00\x1f")])
    await dev.wait_for(lambda: "bad-1" in dev.refusals)
    await dev.close()
    await dev.connect()  # a fresh session must not mean a fresh allowance
    await dev.write("people/p-thr", PERSON, "next")
    assert dev.ws is not None
    await asyncio.wait_for(dev.ws.wait_closed(), 5)
    assert dev.ws.close_code == p.CloseCode.THROTTLED
    assert "next" not in dev.acks
    await dev.close()  # its reader ended with the close: collect it here, not in a later test


async def _closed_handshake(server: HubServer, device_id: str, key: object, client_id: int
                            ) -> tuple[p.Message, int | None]:
    """Run a handshake that the hub ends: its last frame and the close code."""
    async with websockets.connect(server.sync_url) as ws:
        await ws.send(p.encode(p.Hello(device_id, 0, (client_id,))))
        frame = p.decode(await ws.recv())  # type: ignore[arg-type]
        if isinstance(frame, p.Challenge):
            await ws.send(p.encode(p.Auth(key.sign_challenge(frame.nonce, device_id))))  # type: ignore[attr-defined]
            frame = p.decode(await ws.recv())  # type: ignore[arg-type]
        await asyncio.wait_for(ws.wait_closed(), 5)
        return frame, ws.close_code


async def test_a_client_id_of_another_device_closes_for_good_not_retry_later(
        server: HubServer) -> None:
    first = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 540)
    await first.connect()
    second = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 541)
    frame, code = await _closed_handshake(server, second.device_id, second.key, 540)
    assert isinstance(frame, p.Error) and frame.reason == "client_id_taken"
    assert code == frame.close_code == p.CloseCode.CONFLICT
    assert code in p.FINAL_CLOSE_CODES and code != p.CloseCode.INTERNAL
    await first.close()


async def test_a_database_error_in_the_handshake_ends_with_error_and_a_close_code(
        server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 550)

    async def down(device_id: str) -> object:
        raise asyncpg.exceptions.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation")

    monkeypatch.setattr(server.hub.accounts, "device", down)
    frame, code = await _closed_handshake(server, dev.device_id, dev.key, 550)
    assert isinstance(frame, p.Error) and frame.close_code == p.CloseCode.INTERNAL
    assert code == p.CloseCode.INTERNAL


async def test_a_damaged_stored_document_blames_nobody_and_loses_nothing(
        server: HubServer) -> None:
    """A stored copy that fails the checks every update must pass (here: a root the schema does
    not have) makes no refusal count against anyone: updates to it wait (RETRY) until an admin
    repairs it; the same hostile bytes on a sound document are the device's fault."""
    hub = server.hub
    for record_id in ("p-sound", "p-damaged"):
        doc = RecordDoc(collection("people"), record_id, client_id=560)
        (made,) = await hub.gate.admit_batch(DIRECTOR, {560}, [(doc.guid, doc.write(PERSON),
                                                                f"c-{record_id}")])
        assert isinstance(made, Admitted)
        await hub.committer.commit("t1", [made.change], user_id=DIRECTOR.user_id,
                                   device_id=None)
    stored = await hub.store.document("t1", "people/p-damaged")
    assert stored is not None
    damaged = Y.Doc()
    damaged.apply_update(stored.state)
    damaged.get("intruder", type=Y.Map)["x"] = 1
    await hub.db.pool.execute(  # an exact state, with no log rows after it
        "UPDATE hub_documents SET state = $1, state_seq = NULL, tail_rows = 0 WHERE guid = $2",
        damaged.get_update(), "people/p-damaged")
    unsafe = b"\x01\x01\x90\x03\x00\x1f"
    # A stored copy damaged behind the log's back is found by a gate that loads it (a hub
    # started after an upgrade); a running gate follows the log, not the stored bytes.
    gate = Gate(hub.store, hub.sandbox, hub.limits, hot_documents=16)
    sound, on_damaged = await gate.admit_batch(DIRECTOR, {560}, [
        ("people/p-sound", unsafe, "u-1"), ("people/p-damaged", unsafe, "u-2")])
    assert isinstance(sound, Refused) and sound.hostile
    assert isinstance(on_damaged, Deferred)
    assert on_damaged.error.code == "stored_invalid"
