"""One device process of bench/peers.py: a share of the simulated paired devices of our hub's run.

Spawned with its devices and the shape; it connects them, waits until each has its bootstrap,
answers ``("ready", None)`` on its pipe and waits for ``start`` (an epoch time, the same for every
process). From then on it makes the same edit schedule as the other processes (paced, or a
burst), pushes, and records what it made, saw, sent and had acknowledged (and how late its own
event loop ran, which adds to every receipt time), until its devices hold
every acknowledgement and every edit of their peers (or the timeout). It answers
``("result", {...})`` with those records (epoch times, comparable across processes on one
machine) and exits; on a failure it answers ``("error", traceback)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets

from bench._common import device_handshake
from core.auth import DeviceKey
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc

WINDOW = 8
"""Push batches a simulated device keeps in flight (each: whatever is pending, up to 200)."""
EDIT = re.compile(rb"e(\d+)x(\d+)\.")
LAG_TICK_S = 0.002
"""How often a device process checks how late its own event loop runs."""


@dataclass
class Device:
    """A paired device: writes edits locally, pushes what is pending, notes what arrives."""

    number: int
    user_id: str
    device_id: str = ""
    key: DeviceKey = field(default_factory=DeviceKey.generate)
    docs: dict[str, RecordDoc] = field(default_factory=dict)
    pending: list[p.PushItem] = field(default_factory=list)
    in_flight: int = 0
    sent: dict[str, float] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)
    refused: list[p.Refusal] = field(default_factory=list)
    saw: set[tuple[int, int]] = field(default_factory=set)
    """Edits of other devices seen (whatever document)."""
    ws: websockets.ClientConnection | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    bootstrapped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def client_id(self) -> int:
        return 1_000_000 + self.number

    async def connect(self, sync_url: str, seen: dict[tuple[int, int], list[float]]) -> Any:
        self.ws = await device_handshake(sync_url, self.device_id, self.key, self.client_id)
        return asyncio.create_task(self._read(seen))

    async def _read(self, seen: dict[tuple[int, int], list[float]]) -> None:
        assert self.ws is not None
        leads = collection("leads")
        async for frame in self.ws:
            now = time.time()
            message = p.decode(frame)  # type: ignore[arg-type]
            if isinstance(message, p.PullBatch):
                for item in message.items:
                    if (item.kind is p.ItemKind.SNAPSHOT and item.guid not in self.docs
                            and item.guid.startswith("leads/")):  # (its lead's client too)
                        self.docs[item.guid] = RecordDoc(
                            leads, item.guid.partition("/")[2], client_id=self.client_id,
                            state=item.data)
                    for client, n in EDIT.findall(item.data):
                        key = (int(client), int(n))
                        if key[0] != self.number:  # its own, merged with others', is no news
                            seen.setdefault(key, []).append(now)
                            self.saw.add(key)
                if not message.more:
                    self.bootstrapped.set()
            elif isinstance(message, p.Ack):
                for update_id, _ in message.entries:
                    self.acked[update_id] = now
                self.in_flight -= 1
                self.wake.set()
            elif isinstance(message, p.Refusal):
                self.refused.append(message)
                self.acked[message.update_id] = now
                self.wake.set()

    async def pusher(self, done: asyncio.Event) -> None:
        assert self.ws is not None
        while not (done.is_set() and not self.pending):
            if self.pending and self.in_flight < WINDOW:
                batch, self.pending = self.pending[:200], self.pending[200:]
                self.in_flight += 1
                await self.ws.send(p.encode(p.PushBatch(tuple(batch))))
                continue
            self.wake.clear()
            await self.wake.wait()

    def edit(self, guid: str, n: int, made: dict[tuple[int, int], float]) -> None:
        now = time.time()
        update = self.docs[guid].write({"source": f"e{self.number}x{n}."})
        update_id = f"{self.device_id}-{n}"
        made[(self.number, n)] = now
        self.sent[update_id] = now
        self.pending.append(p.PushItem(update_id, guid, update))
        self.wake.set()


@dataclass(frozen=True)
class Plan:
    """What a device process is to do (picklable)."""

    sync_url: str
    devices: list[tuple[int, str, str, bytes]]
    """(number, user id, device id, private key bytes) of each of its devices."""
    guids: list[str]
    clients: int
    """Devices in the whole run (client i edits document i mod len(guids))."""
    edits: int
    rate: float
    timeout_s: float


async def loop_lag(samples: list[float]) -> None:
    """Until cancelled, note how late the event loop wakes a ``LAG_TICK_S`` sleep (ms): the
    delay the process's own load adds to the receipt times it records."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(LAG_TICK_S)
        samples.append((time.perf_counter() - asked - LAG_TICK_S) * 1e3)


async def drive(plan: Plan, conn: Connection) -> None:
    devices = [Device(number, user_id, device_id, DeviceKey.from_bytes(key))
               for number, user_id, device_id, key in plan.devices]
    docs = len(plan.guids)
    made: dict[tuple[int, int], float] = {}
    seen: dict[tuple[int, int], list[float]] = {}
    readers = [await d.connect(plan.sync_url, seen) for d in devices]
    try:
        await asyncio.wait_for(asyncio.gather(*(d.bootstrapped.wait() for d in devices)), 60)
        assert all(set(d.docs) == {plan.guids[d.number % docs]} for d in devices), (
            "each device's scope is its document alone")
        conn.send(("ready", None))
        name, start = await asyncio.to_thread(conn.recv)
        assert name == "start", name
        # Each device expects every edit of the other devices on its document.
        expected = {d.number: plan.edits * (sum(1 for m in range(plan.clients)
                                                if m % docs == d.number % docs) - 1)
                    for d in devices}
        done = asyncio.Event()
        pushers = [asyncio.create_task(d.pusher(done)) for d in devices]
        await asyncio.sleep(max(0.0, start - time.time()))
        lags: list[float] = []
        lag_watch = asyncio.create_task(loop_lag(lags))

        async def edits(device: Device) -> None:
            guid = plan.guids[device.number % docs]
            # paced: the clients take turns within each period, as people typing do
            first = start + device.number / (plan.clients * plan.rate) if plan.rate else start
            await asyncio.sleep(max(0.0, first - time.time()))
            for n in range(plan.edits):
                device.edit(guid, n, made)
                if plan.rate:
                    await asyncio.sleep(max(0.0, first + (n + 1) / plan.rate - time.time()))
                elif n % 10 == 9:
                    await asyncio.sleep(0)

        await asyncio.gather(*(edits(d) for d in devices))
        made_at = time.time()
        done.set()
        for d in devices:
            d.wake.set()
        deadline = time.time() + plan.timeout_s
        total = len(devices) * plan.edits

        def finished() -> bool:
            return (sum(len(d.acked) for d in devices) >= total
                    and all(len(d.saw) >= expected[d.number] for d in devices))

        while not finished() and time.time() < deadline:
            await asyncio.sleep(0.005)
        for task in (*pushers, lag_watch):
            task.cancel()
        conn.send(("result", {
            "made_at": made_at, "made": made, "seen": seen, "loop_lag_ms": lags,
            "sent": {uid: t for d in devices for uid, t in d.sent.items()},
            "acked": {uid: t for d in devices for uid, t in d.acked.items()},
            "refused": [r.update_id for d in devices for r in d.refused]}))
    finally:
        for reader in readers:
            reader.cancel()
        for d in devices:
            if d.ws is not None:
                with contextlib.suppress(Exception):
                    await d.ws.close()


def main(plan: Plan, conn: Connection) -> None:
    """The device process's entry point."""
    try:
        asyncio.run(drive(plan, conn))
    except Exception:
        conn.send(("error", traceback.format_exc()))
