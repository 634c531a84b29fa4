"""The edge reconnects at once when its way to the hub changes: a wait for the next attempt is
cut short, and an open session that no longer answers is replaced instead of waiting for the
keepalive to time out."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Hashable
from pathlib import Path

import pytest

from edge_agent.netwatch import NetworkWatch, route_fingerprint
from edge_agent.reconnect import Backoff
from edge_agent.service import EdgeAgent
from edge_agent.sync_client import NETWORK_CHECK_S
from tests.hubkit import running_hub
from tests.reliability.kit import paired, until
from tests.reliability.proxy import FaultProxy

pytestmark = pytest.mark.anyio
LONG_WAIT_SEED = 2
"""A seed whose first backoff draw over 30 s is long (checked below)."""


def test_the_route_fingerprint_names_the_source_address() -> None:
    names, sources = route_fingerprint("127.0.0.1", 9)  # type: ignore[misc]
    assert "lo" in names
    assert sources == ("127.0.0.1",)
    assert route_fingerprint("127.0.0.1", 9) == route_fingerprint("127.0.0.1", 9)
    _, unresolved = route_fingerprint("no-such-hub.invalid", 443)  # type: ignore[misc]
    assert unresolved.startswith("unresolved")


async def test_a_network_change_cuts_the_backoff_wait_short(tmp_path: Path) -> None:
    assert random.Random(LONG_WAIT_SEED).uniform(0, 30) > 15
    network: dict[str, Hashable] = {"now": "wifi"}
    async with running_hub() as server, FaultProxy(server.port) as proxy:
        settings = await paired(server, tmp_path / "ipad", "t1-senior_broker",
                                hub_url=proxy.url, backoff_base_s=30.0, backoff_cap_s=60.0,
                                network_watch_s=0)
        async with EdgeAgent(settings) as edge:
            sync = edge.sync
            assert sync is not None
            await until(lambda: _true(sync.online), what="first session")
            sync.backoff = Backoff(30.0, 60.0, rng=random.Random(LONG_WAIT_SEED))
            async with NetworkWatch(lambda: network["now"], sync.network_changed, 0.05):
                proxy.cut()
                await until(lambda: _true(not sync.online), what="the cut seen")
                await asyncio.sleep(1.0)
                assert not sync.online and sync.sessions == 1  # waiting its long backoff
                network["now"] = "lte"
                took = await until(lambda: _true(sync.online), timeout=5,
                                   what="reconnect after the change")
                assert sync.sessions == 2
                assert took < 3


async def test_a_dead_session_is_replaced_after_a_network_change(tmp_path: Path) -> None:
    network: dict[str, Hashable] = {"now": "wifi"}
    async with running_hub() as server, FaultProxy(server.port) as proxy:
        settings = await paired(server, tmp_path / "ipad", "t1-senior_broker",
                                hub_url=proxy.url, network_watch_s=0)
        async with EdgeAgent(settings) as edge:
            sync = edge.sync
            assert sync is not None
            await until(lambda: _true(sync.online), what="first session")
            async with NetworkWatch(lambda: network["now"], sync.network_changed, 0.05):
                # A change while the session is healthy: it answers and stays.
                network["now"] = "wifi-5ghz"
                await asyncio.sleep(NETWORK_CHECK_S + 0.5)
                assert sync.online and sync.sessions == 1
                # The link goes silent (both ends think they are connected), then the
                # device moves network: the session is dropped and a new one made.
                proxy.stall()
                changed = time.monotonic()
                network["now"] = "lte"
                await until(lambda: _true(not sync.online), timeout=NETWORK_CHECK_S + 2,
                            what="the dead session dropped")
                proxy.flow()
                await until(lambda: _true(sync.online and sync.sessions == 2), timeout=10,
                            what="a new session")
                assert time.monotonic() - changed < NETWORK_CHECK_S + 4
                # Without the change it would wait for the keepalive (20 s + 20 s).


async def _true(value: bool) -> bool:
    return value
