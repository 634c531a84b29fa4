"""A sync session keeps reading its socket while it judges pushes: a device with a queue of
pushes still gets its pings answered and stays connected (real hub, real websockets)."""

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
