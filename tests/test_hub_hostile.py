"""Hostile CRDT bytes at the hub's sync endpoint: refused with a reason, counted against the
device, and nothing else is disturbed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

from sync import protocol as p
from sync.record import RecordDoc
from tests.hubkit import pair_device, running_hub
from tests.test_yupdate_hazards import any_item, gc, item, leb128, update

pytestmark = pytest.mark.anyio
PERSON = {"tenant_id": "t1", "full_name": "Zara Khan"}


async def test_hostile_updates_are_refused_and_other_devices_keep_syncing() -> None:
    async with running_hub(max_offences=4, throttle_after=10) as server:
        evil = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 100)
        good = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 200)
        await evil.connect()
        await good.connect()
        await good.write("people/p1", PERSON, "g-1")
        await good.wait_for(lambda: "g-1" in good.acks)
        nested = leb128(1) + bytes([117, 1]) * 3000 + bytes([119, 1]) + b"x"
        hostile = {
            "h-dup": update([(100, 0, [any_item(1, key="city")]),
                             (100, 1, [any_item(2, key="city")])]),
            "h-deep": update([(100, 0, [item(8, nested, key="city")])]),
            "h-foreign": update([(200, 50, [gc(1000)])]),
        }
        await evil.push([p.PushItem(uid, "people/p1", data) for uid, data in hostile.items()])
        await evil.wait_for(lambda: set(hostile) <= set(evil.refusals))
        assert {uid: r.reason for uid, r in evil.refusals.items()} == {
            "h-dup": "duplicate_client", "h-deep": "too_deep", "h-foreign": "foreign_client"}
        # The other device is undisturbed, and the stored document still loads.
        await good.write("people/p1", {"city": "Pune"}, "g-2")
        await good.wait_for(lambda: "g-2" in good.acks)
        await evil.wait_for(lambda: evil.docs.get("people/p1") is not None
                            and evil.docs["people/p1"].content().get("city") == "Pune")
        stored = await server.hub.store.document("t1", "people/p1")
        assert stored is not None
        assert RecordDoc(evil.docs["people/p1"].collection, "p1",
                         state=stored.state).project().city == "Pune"
        assert await server.hub.db.pool.fetchval("SELECT count(*) FROM hub_updates") == 2
        # A fourth unsafe update blocks the device; an admin sees why.
        await evil.push([p.PushItem("h-4", "people/p1", b"\x01\x01\x64\x00\x1f")])
        assert evil.ws is not None
        await asyncio.wait_for(evil.ws.wait_closed(), 5)
        row = await server.hub.db.pool.fetchrow("SELECT status, blocked_reason FROM hub_devices "
                                                "WHERE device_id = $1", evil.device_id)
        assert row["status"] == "blocked" and "unsafe" in row["blocked_reason"]
        with pytest.raises(ConnectionRefusedError, match="blocked"):
            await evil.connect()
        await good.close()


async def test_a_hung_worker_is_the_hubs_problem_the_update_commits_on_a_fresh_one() -> None:
    async with running_hub(sandbox_timeout_s=0.5, max_offences=1) as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 300)
        await dev.connect()
        stopped = [pid for pid in server.hub.sandbox.pids if pid is not None]
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)  # the library "hangs" inside the worker
        await dev.write("people/p1", PERSON, "u-1")
        await dev.wait_for(lambda: "u-1" in dev.acks, timeout=30)
        assert not dev.refusals and not dev.retries
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert await server.hub.db.pool.fetchval("SELECT offences FROM hub_devices") == 0
        await dev.close()


async def test_a_device_with_refused_unsafe_updates_is_throttled() -> None:
    async with running_hub(max_offences=10, throttle_after=1, throttle_interval_s=30) as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 400)
        await dev.connect()
        await dev.push([p.PushItem("bad-1", "people/p1", b"\x01\x01\x90\x03\x00\x1f")])
        await dev.wait_for(lambda: "bad-1" in dev.refusals)
        await dev.write("people/p1", PERSON, "next")  # too soon after an offence
        assert dev.ws is not None
        await asyncio.wait_for(dev.ws.wait_closed(), 5)
        assert dev.ws.close_code == p.CloseCode.THROTTLED
        assert "next" not in dev.acks
