"""A sync session keeps reading its socket while it judges pushes: a device with a queue of
pushes still gets its pings answered and stays connected, and one pushing past the window is
held back, never dropped (real hub, real websockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from core.identity import Principal
from sync import protocol as p
from tests.hubkit import pair_device, running_hub

pytestmark = pytest.mark.anyio
JUDGING_S = 1.5
"""How long the (slowed) gate takes per batch; the device wants a pong within a second."""


async def test_a_device_with_a_queue_of_pushes_is_not_dropped_for_keepalive() -> None:
    async with running_hub(push_window=4) as server:
        gate = server.hub.gate
        real = gate.admit_batch

        async def slow(principal: Principal, bound: Any, items: Sequence[Any]) -> Any:
            await asyncio.sleep(JUDGING_S)  # a busy hub: each batch takes a while to judge
            return await real(principal, bound, items)

        gate.admit_batch = slow  # type: ignore[method-assign]
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 600)
        await dev.connect(ping_interval=0.3, ping_timeout=1.0)
        batches = [[p.PushItem(f"u-{n}", f"people/p{n}", dev.doc(f"people/p{n}").write(
            {"tenant_id": "t1", "full_name": f"Client {n}"}))] for n in range(4)]
        for batch in batches:  # the whole window at once: six seconds of judging queued
            await dev.push(batch)
        await dev.wait_for(lambda: len(dev.acks) == len(batches), timeout=30)
        assert dev.ws is not None and dev.ws.close_code is None  # never dropped
        rtt = await asyncio.wait_for(await dev.ws.ping(), 1.0)  # answered at once meanwhile
        assert rtt < 1.0
        assert not dev.refusals
        await dev.close()



async def test_a_device_pushing_past_its_window_is_slowed_never_dropped() -> None:
    """Three times the push window at once: the hub holds at most the window (it stops reading
    until a batch is judged, so no pass judges more than the window and the batch before it),
    never closes the session, answers a ping once it reads again, and acknowledges every
    update."""
    async with running_hub(push_window=2) as server:
        gate = server.hub.gate
        real = gate.admit_batch
        judged: list[int] = []

        async def slow(principal: Principal, bound: Any, items: Sequence[Any]) -> Any:
            judged.append(len(items))
            await asyncio.sleep(JUDGING_S)
            return await real(principal, bound, items)

        gate.admit_batch = slow  # type: ignore[method-assign]
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 601)
        await dev.connect(ping_interval=None)  # its keepalive is not what is tested here
        batches = [[p.PushItem(f"u-{n}", f"people/p{n}", dev.doc(f"people/p{n}").write(
            {"tenant_id": "t1", "full_name": f"Client {n}"}))] for n in range(6)]
        for batch in batches:
            await dev.push(batch)
        assert dev.ws is not None
        await asyncio.wait_for(await dev.ws.ping(), 30)  # queued behind the pushes, answered
        await dev.wait_for(lambda: len(dev.acks) == len(batches), timeout=30)
        assert dev.ws.close_code is None and not dev.refusals
        assert set(dev.acks) == {f"u-{n}" for n in range(6)}
        assert sum(judged) == 6 and max(judged) <= 2 + 1, judged
        await dev.close()
