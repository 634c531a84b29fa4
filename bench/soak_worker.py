"""One soak worker process: a share of the soak's devices, driven by bench/soak.py.

Commands arrive on a pipe as ``(name, *args)``; every answer goes to one queue shared by the
workers as ``(worker, name, payload)``. While its devices are online the worker also sends a
``status`` every second (unsent updates, writes made, documents held).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import sqlite3
import sys
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.crypto import Sealer
from edge_agent.device import pair, unlock
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from schema import collection
from sync.record import RecordDoc

PASSPHRASE = "soak device passphrase"
NEW_LEAD_SHARE = 0.3
"""Share of writes that create a lead; the others append a token to a held lead's notes."""
ROW_COLUMNS = ("id", "owner_id", "person_id", "notes")
"""The columns compared between a replica and the hub (`digest`)."""


def digest(rows: list[tuple[Any, ...]]) -> str:
    """One hash of a set of lead rows (``ROW_COLUMNS``), the same on the hub's side."""
    return hashlib.sha256(json.dumps(sorted(rows)).encode()).hexdigest()


@dataclass
class Device:
    """One simulated device: its settings, its agent while it runs, and what it wrote."""

    number: int
    user_id: str
    settings: EdgeSettings
    agent: EdgeAgent | None = None
    created: list[str] = field(default_factory=list)
    tokens: list[tuple[str, str]] = field(default_factory=list)
    """(lead id, token) of every note append, each token unique in the run."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.tokens)

    async def write(self, agent: EdgeAgent, rng: random.Random) -> None:
        """Create a lead, or append a unique token to the notes of one this device holds."""
        held = [d.record_id for d in agent.replica.documents() if d.collection.name == "leads"]
        if not held or rng.random() < NEW_LEAD_SHARE:
            record = await agent.write("leads", None, {
                "person_id": f"p-{self.number}-{self.writes}", "notes": ""})
            self.created.append(record.id)
            return
        lead, token = rng.choice(held), f"[d{self.number}.{self.writes}]"
        await agent.write("leads", lead, lambda content: {"notes": content["notes"] + token})
        self.tokens.append((lead, token))


def confirmed_leads(data_dir: Path, db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Each lead's confirmed content: what the device holds as acknowledged by the hub (its
    own updates folded in on ACK, the hub's as pulled)."""
    sealer = Sealer(unlock(data_dir, PASSPHRASE).replica_secret)
    leads = collection("leads")
    out = {}
    for guid, blob in db.execute("SELECT guid, confirmed FROM edge_documents WHERE collection ="
                                 " 'leads' AND confirmed IS NOT NULL"):
        record_id = guid.partition("/")[2]
        out[record_id] = RecordDoc(leads, record_id, state=sealer.open(blob, guid)).content()
    return out


class Worker:
    def __init__(self, wid: int, reports: Queue[Any]) -> None:
        self.wid, self.reports = wid, reports
        self.devices: dict[int, Device] = {}
        self.writers: list[asyncio.Task[None]] = []
        self.status_task: asyncio.Task[None] | None = None
        self.restarts: set[asyncio.Task[None]] = set()

    def send(self, name: str, payload: Any = None) -> None:
        self.reports.put((self.wid, name, payload))

    async def pair(self, folder: Path, hub_url: str, devices: list[tuple[int, str, str]]
                   ) -> None:
        """Pair each device with its code, then connect each once until caught up."""
        for number, user_id, code in devices:
            data_dir = folder / f"d{number}"
            await pair(data_dir, hub_url, code, f"d{number}", PASSPHRASE)
            self.devices[number] = Device(number, user_id, EdgeSettings(
                data_dir=data_dir, passphrase=PASSPHRASE, backoff_cap_s=5.0,
                network_watch_s=0))
        await self.online()
        await asyncio.gather(*(d.agent.sync.caught_up.wait() for d in self.devices.values()
                               if d.agent and d.agent.sync))
        await self.offline()
        self.send("ready")

    async def offline_writes(self, per_device: int, seed: int) -> None:
        """Each device writes ``per_device`` times with its sync switched off (a partition)."""
        rng = random.Random(seed)
        for device in self.devices.values():
            async with EdgeAgent(device.settings, sync=False) as agent:
                for _ in range(per_device):
                    await device.write(agent, rng)
        self.send("written", per_device * len(self.devices))

    async def online(self) -> None:
        for device in self.devices.values():
            device.agent = await EdgeAgent(device.settings).__aenter__()
        if self.status_task is None:
            self.status_task = asyncio.create_task(self._status())

    async def offline(self) -> None:
        await asyncio.gather(*self.restarts)
        if self.status_task is not None:
            self.status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.status_task
            self.status_task = None
        for device in self.devices.values():
            async with device.lock:
                if device.agent is not None:
                    await device.agent.__aexit__(None, None, None)
                    device.agent = None

    async def _status(self) -> None:
        while True:
            pending = held = 0
            for device in self.devices.values():
                async with device.lock:
                    if device.agent is not None:
                        pending += await device.agent.replica.pending_count()
                        held += device.agent.replica.document_count
            self.send("status", {"pending": pending, "held": held, "writes": sum(
                d.writes for d in self.devices.values())})
            await asyncio.sleep(1.0)

    def start_writing(self, mean_interval_s: float, seed: int) -> None:
        rng = random.Random(seed)
        self.writers = [asyncio.create_task(self._write_loop(d, mean_interval_s, rng))
                        for d in self.devices.values()]

    async def _write_loop(self, device: Device, mean_interval_s: float,
                          rng: random.Random) -> None:
        while True:
            await asyncio.sleep(rng.expovariate(1 / mean_interval_s))
            async with device.lock:
                if device.agent is not None:  # a device that is restarting writes later
                    await device.write(device.agent, rng)

    async def stop_writing(self) -> None:
        for task in self.writers:
            task.cancel()
        await asyncio.gather(*self.writers, return_exceptions=True)
        self.writers = []
        self.send("quiet", sum(d.writes for d in self.devices.values()))

    def restart(self, number: int, offline_s: float) -> None:
        """Stop a device's agent (it drops off), and start it again after ``offline_s``."""
        task = asyncio.create_task(self._restart(self.devices[number], offline_s))
        self.restarts.add(task)
        task.add_done_callback(self.restarts.discard)

    async def _restart(self, device: Device, offline_s: float) -> None:
        async with device.lock:
            if device.agent is None:
                return
            await device.agent.__aexit__(None, None, None)
            device.agent = None
        await asyncio.sleep(offline_s)
        async with device.lock:
            device.agent = await EdgeAgent(device.settings).__aenter__()

    async def digests(self) -> None:
        """Per device: its user, unsent updates and the digest of the leads it holds."""
        await asyncio.gather(*self.restarts)
        out = {}
        for number, device in self.devices.items():
            async with device.lock:
                assert device.agent is not None
                rows = await device.agent.replica.query(
                    f"SELECT {', '.join(ROW_COLUMNS)} FROM temp.crm_leads")
                out[number] = (device.user_id, await device.agent.replica.pending_count(),
                               digest([tuple(r[c] for c in ROW_COLUMNS) for r in rows]))
        self.send("digests", out)

    async def finish(self) -> None:
        """Stop every device; per device what it wrote, which of it the hub acknowledged,
        its refusals and the integrity check of its replica."""
        await self.offline()
        out = {}
        for number, device in self.devices.items():
            with contextlib.closing(sqlite3.connect(device.settings.data_dir / "replica.db")
                                    ) as db:
                integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
                refusals = db.execute("SELECT count(*) FROM edge_refusals").fetchone()[0]
                unsent = db.execute("SELECT count(*) FROM edge_outbox").fetchone()[0]
                confirmed = confirmed_leads(device.settings.data_dir, db)
            out[number] = {
                "user_id": device.user_id, "created": device.created, "tokens": device.tokens,
                "acked_created": [lead for lead in device.created
                                  if confirmed.get(lead, {}).get("person_id")],
                "acked_tokens": [(lead, token) for lead, token in device.tokens
                                 if token in (confirmed.get(lead, {}).get("notes") or "")],
                "integrity": integrity, "refusals": refusals, "unsent": unsent}
        self.send("finished", out)

    async def run(self, commands: Connection) -> None:
        folder: Path | None = None
        while True:
            name, *args = await asyncio.to_thread(commands.recv)
            try:
                if name == "pair":
                    folder, hub_url, devices = args
                    await self.pair(folder, hub_url, devices)
                elif name == "offline_writes":
                    await self.offline_writes(*args)
                elif name == "online":
                    await self.online()
                    self.send("online")
                elif name == "write":
                    self.start_writing(*args)
                elif name == "restart":
                    self.restart(*args)
                elif name == "quiet":
                    await self.stop_writing()
                elif name == "digests":
                    await self.digests()
                elif name == "finish":
                    await self.finish()
                elif name == "quit":
                    await self.offline()
                    return
            except Exception:
                self.send("error", traceback.format_exc())


def main(wid: int, commands: Connection, reports: Queue[Any]) -> None:
    """The worker process's entry point."""
    asyncio.run(Worker(wid, reports).run(commands))
