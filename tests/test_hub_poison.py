"""Ten honest devices push for 30 s while one device pushes poison: the honest ones never notice
(every update acknowledged exactly once, none refused, nobody charged), the poisoner is refused,
charged and blocked, and stays blocked (real hub, real websockets, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

import pycrdt as Y
import pytest
import websockets

from schema import collection
from schema.crdt import CrdtKind, list_root
from sync import protocol as p
from sync.record import TRUSTED_LIMITS, RecordDoc
from sync.yupdate import ID, decode_update
from tests import hubkit
from tests.hubkit import pair_device, running_hub
from tests.test_yupdate_hazards import any_item, string_item, update

pytestmark = pytest.mark.anyio
HONEST = 10
POISON_CLIENT = 900
MAX_OFFENCES = 40
POISON_ROUND_S = 0.3
RETRY_PAUSE_S = 0.5
DURATION_S = 30.0
"""The honest devices push this long; the poisoner pushes until blocked, then keeps knocking."""


async def _push_until_answered(dev: hubkit.TestDevice, batch: list[p.PushItem]) -> None:
    """Push a batch and wait for each item's answer; push again what the hub refused for its
    own trouble (a retryable reason: it recorded nothing of it)."""
    waiting = {i.update_id: i for i in batch}
    while waiting:
        for uid in waiting:  # a retryable refusal is answered again
            dev.retries.pop(uid, None)
            dev.refusals.pop(uid, None)
        await dev.push(list(waiting.values()))
        await dev.wait_for(_answered(dev, set(waiting)), timeout=30)
        waiting = {u: i for u, i in waiting.items() if u in dev.retries}
        if waiting:  # the hub's own trouble: push again after a pause
            await asyncio.sleep(RETRY_PAUSE_S)


def _answered(dev: hubkit.TestDevice, update_ids: set[str]) -> Callable[[], bool]:
    return lambda: all(u in dev.acks or u in dev.refusals or u in dev.retries
                       for u in update_ids)


async def _honest(dev: hubkit.TestDevice, number: int, done: asyncio.Event) -> list[str]:
    """Create a few people and edit them, five updates a batch, until ``done``; the ids sent."""
    sent: list[str] = []
    k = 0
    while not done.is_set():
        batch = []
        for _ in range(5):
            guid = f"people/h{number}-{k % 4}"
            values = ({"tenant_id": "t1", "full_name": f"Client {number}-{k}",
                       "notes": "Loves the sea 🌊 view"} if k < 4 else {"city": f"City {k}"})
            batch.append(p.PushItem(f"h{number}-u{k}", guid, dev.doc(guid).write(values)))
            k += 1
        await _push_until_answered(dev, batch)
        sent += [i.update_id for i in batch]
    return sent


def _split(target: hubkit.TestDevice, guid: str) -> bytes | None:
    """An insert between the two halves of the emoji in an honest client's notes (None until
    that client wrote them)."""
    state = target.doc(guid).encode_state()
    text = next((s for s in decode_update(state, TRUSTED_LIMITS).structs
                 if s.text and "🌊" in s.text), None)
    if text is None:
        return None
    high = text.clock + len("Loves the sea ")  # one UTF-16 unit a character before the emoji
    return update([(POISON_CLIENT, 0, [string_item("X", origin=ID(text.client, high),
                                                    right=ID(text.client, high + 1))])])


def _poison_batch(round_no: int, honest: hubkit.TestDevice) -> list[p.PushItem]:
    """Unsafe bytes, another device's client id, a duplicate client, a NUL in a value, a
    Text edit that splits a surrogate pair, and a tag list far over its limit."""
    honest_client = honest.client_id
    guid = f"people/e{round_no}"
    forged = RecordDoc(collection("people"), f"e{round_no}", client_id=honest_client)
    nul = Y.Doc(client_id=POISON_CLIENT)  # raw pycrdt: RecordDoc refuses to write a NUL
    fields = nul.get("fields", type=Y.Map)
    fields["tenant_id"], fields["full_name"] = "t1", "Eve\x00Null"
    return [
        p.PushItem(f"e{round_no}-bytes", guid, b"\x01\x01\x90\x03\x00\x1f"),
        p.PushItem(f"e{round_no}-foreign", guid,
                   forged.write({"tenant_id": "t1", "full_name": "Forged"})),
        p.PushItem(f"e{round_no}-dup", guid,
                   update([(POISON_CLIENT, 0, [any_item(1, key="city")]),
                           (POISON_CLIENT, 1, [any_item(2, key="city")])])),
        p.PushItem(f"e{round_no}-nul", f"people/n{round_no}", nul.get_update()),
        p.PushItem(f"e{round_no}-huge", f"people/l{round_no}", _huge_tags()),
        *([p.PushItem(f"e{round_no}-split", "people/h0-0", split)]
          if (split := _split(honest, "people/h0-0")) else []),
    ]


def _huge_tags() -> bytes:
    """A person whose tags set holds 5,000 members (written with raw pycrdt: the record
    engine refuses to write a list over its limit)."""
    doc = Y.Doc(client_id=POISON_CLIENT)
    fields = doc.get("fields", type=Y.Map)
    fields["tenant_id"], fields["full_name"] = "t1", "Many tags"
    tags = doc.get(list_root("tags", CrdtKind.SET), type=Y.Map)
    for n in range(5_000):
        tags[f"tag{n}/x"] = True
    return doc.get_update()


async def _answered_or_closed(dev: hubkit.TestDevice, update_ids: set[str]) -> None:
    """Wait until each of ``update_ids`` is answered or the hub has closed the session."""
    assert dev.ws is not None
    answered = _answered(dev, update_ids)
    deadline = time.monotonic() + 30
    while dev.ws.close_code is None and not answered():
        assert time.monotonic() < deadline, f"{update_ids} neither answered nor closed"
        with contextlib.suppress(TimeoutError):
            await dev.wait_for(answered, timeout=0.5)


async def _poisoner(dev: hubkit.TestDevice, honest: hubkit.TestDevice,
                    until: float) -> tuple[int, int, float | None]:
    """Push poison until ``until``, each batch after the last one's answers: (rounds, sessions,
    seconds until a connection was refused as blocked, None if none was)."""
    rounds = sessions = 0
    started = time.monotonic()
    blocked_after: float | None = None
    while time.monotonic() < until:
        try:
            await dev.connect()
        except ConnectionRefusedError as exc:
            assert "blocked" in str(exc)
            if blocked_after is None:
                blocked_after = time.monotonic() - started
            await asyncio.sleep(POISON_ROUND_S)
            continue
        assert blocked_after is None, "a blocked device was let in again"
        sessions += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            while time.monotonic() < until:
                rounds += 1
                if rounds % 3 == 0:  # a NUL inside an update id: malformed, the session ends
                    bad_id = f"e{rounds}\x00id"
                    await dev.push([p.PushItem(bad_id, "people/e", b"\x00\x00")])
                    await _answered_or_closed(dev, {bad_id})  # never answered: until closed
                else:
                    batch = _poison_batch(rounds, honest)
                    await dev.push(batch)
                    await _answered_or_closed(dev, {i.update_id for i in batch})
                assert dev.ws is not None
                if dev.ws.close_code is not None:
                    break
                await asyncio.sleep(POISON_ROUND_S)
        await dev.close()
    return rounds, sessions, blocked_after


async def test_ten_honest_devices_are_untouched_while_one_device_pushes_poison() -> None:
    async with running_hub(max_offences=MAX_OFFENCES, throttle_after=1000) as server:
        honest = [await pair_device(server, "sales_director@t1.test", "t1-sales_director",
                                    100 + n) for n in range(HONEST)]
        evil = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker",
                                 POISON_CLIENT)
        for dev in honest:
            await dev.connect()
        done = asyncio.Event()
        pushers = [asyncio.create_task(_honest(dev, n, done)) for n, dev in enumerate(honest)]
        started = time.monotonic()
        rounds, sessions, blocked_after = await _poisoner(evil, honest[0],
                                                          started + DURATION_S)
        done.set()
        sent = await asyncio.gather(*pushers)
        elapsed = time.monotonic() - started

        pool = server.hub.db.pool
        for dev, ids in zip(honest, sent, strict=True):
            counts = Counter(uid for uid, _ in dev.ack_log)
            assert set(counts) == set(ids) and set(counts.values()) == {1}, dev.device_id
            assert all(seq > 0 for _, seq in dev.ack_log)
            assert not dev.refusals, list(dev.refusals.values())[:3]
            assert dev.error is None
        assert sum(len(ids) for ids in sent) >= HONEST * 10
        rows = await pool.fetch("SELECT device_id, status, offences FROM hub_devices")
        status = {r["device_id"]: (r["status"], r["offences"]) for r in rows}
        assert all(status[d.device_id] == ("active", 0) for d in honest)
        assert status[evil.device_id][0] == "blocked"
        assert status[evil.device_id][1] >= MAX_OFFENCES
        assert not evil.acks  # not one poison item committed
        reasons = {uid.rpartition("-")[2]: r.reason for uid, r in evil.refusals.items()}
        assert reasons["bytes"] != "" and reasons["foreign"] == "foreign_client"
        assert reasons["dup"] == "duplicate_client"
        assert "nul" in reasons  # refused (by the validator, else as unstorable at commit)
        assert reasons["huge"] in ("field_too_large", "too_many_structs", "too_large")
        assert reasons.get("split", "surrogate_split") == "surrogate_split"
        splits = [r for uid, r in evil.refusals.items() if uid.endswith("-split")]
        assert splits, "no round reached the honest notes"
        assert await pool.fetchval(
            "SELECT count(*) FROM hub_documents WHERE guid LIKE 'people/e%' "
            "OR guid LIKE 'people/n%'") == 0
        assert blocked_after is not None, f"not blocked in {DURATION_S:.0f}s ({rounds} rounds)"
        assert sessions >= 2 and rounds >= 3 and elapsed >= DURATION_S
        for dev in honest:
            await dev.close()
