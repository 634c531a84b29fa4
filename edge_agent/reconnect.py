"""When to reconnect: jittered exponential backoff that starts over after a healthy session,
cut short as soon as a probe sees the hub come back."""

from __future__ import annotations

import asyncio
import random

import httpx

HEALTHY_AFTER_S = 3.0
"""A session welcomed and kept this long was healthy: the next cut retries at once."""
PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0


class Backoff:
    """Delays before reconnecting: full jitter over ``base · 2^attempt``, capped at ``cap``."""

    def __init__(self, base_s: float, cap_s: float, *, healthy_after_s: float = HEALTHY_AFTER_S,
                 rng: random.Random | None = None) -> None:
        self.base, self.cap, self.healthy_after = base_s, cap_s, healthy_after_s
        self.attempts = 0
        self._rng = rng or random.Random()

    def session_ended(self, healthy_for_s: float | None) -> None:
        """A session ended (cut or closed); ``healthy_for_s``: how long it ran after the hub
        welcomed the device (None: it never got that far)."""
        if healthy_for_s is not None and healthy_for_s >= self.healthy_after:
            self.attempts = 0

    def next_delay(self) -> float:
        delay = self._rng.uniform(0, min(self.cap, self.base * 2 ** min(self.attempts, 30)))
        self.attempts += 1
        return delay


async def hub_ready(client: httpx.AsyncClient, hub_url: str) -> bool:
    """The hub answers its health check (its database included)."""
    try:
        response = await client.get(f"{hub_url.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S)
    except (httpx.HTTPError, OSError):
        return False
    return response.status_code == 200


async def wait_to_reconnect(delay_s: float, hub_url: str, wake: asyncio.Event, *,
                            unreachable: bool = False,
                            probe_interval_s: float = PROBE_INTERVAL_S) -> str:
    """Wait ``delay_s``, or less: until ``wake`` is set (the hub announced itself, the network
    changed) or the hub is seen ready after being seen down (``unreachable``: the last attempt
    could not reach it at all). Returns why it stopped waiting: ``"delay"``, ``"wake"`` or
    ``"hub_back"``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay_s
    seen_down = unreachable
    async with httpx.AsyncClient() as client:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return "delay"
            step = min(left, probe_interval_s * random.uniform(0.5, 1.5))
            try:
                await asyncio.wait_for(wake.wait(), step)
            except TimeoutError:
                pass
            else:
                wake.clear()
                return "wake"
            if deadline - loop.time() <= 0:
                return "delay"
            if await hub_ready(client, hub_url):
                if seen_down:
                    return "hub_back"
            else:
                seen_down = True
