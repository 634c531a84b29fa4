"""Helpers of the reliability tests: paired edge devices, waiting for conditions, checks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from edge_agent.device import IDENTITY_FILE, pair
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from tests.hubkit import login


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20,
                what: str = "condition") -> float:
    """Wait until ``check()`` holds; returns the seconds it took."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < timeout, f"{what} not reached in {timeout}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def paired(server: HubServer, folder: Path, user_id: str, *,
                 hub_url: str | None = None, **settings: object) -> EdgeSettings:
    """Pair a device folder with ``server``; ``hub_url``: reach the hub there instead (a proxy).
    """
    admin = await login(server, f"admin@{user_id.split('-')[0]}.test")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/devices/pairing-codes", headers=admin,
                            json={"user_id": user_id, "device_kind": "ipad"})
        r.raise_for_status()
    await pair(folder, server.url, r.json()["code"], folder.name)
    if hub_url is not None:
        point_at(folder, hub_url)
    return EdgeSettings(data_dir=folder, **{"backoff_cap_s": 1.0, **settings})  # type: ignore[arg-type]


def point_at(folder: Path, hub_url: str) -> None:
    """Make a paired device reach its hub at ``hub_url`` from now on."""
    path = folder / IDENTITY_FILE
    identity = json.loads(path.read_text())
    path.write_text(json.dumps({**identity, "hub_url": hub_url}))
