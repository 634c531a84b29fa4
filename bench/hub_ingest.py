"""Benchmark of the hub's ingest: sustained push throughput and push→broadcast latency.

Run: ``.venv/bin/python bench/hub_ingest.py [--devices 50] [--updates 120] [--batch 10]``.

The hub runs in its own process (as in production) on PostgreSQL (``DATABASE_URL`` or a private
one from `pgserver`). ``--devices`` brokers' devices connect over real websockets and each pushes
its own leads (creates, then field and note edits) in batches, one batch in flight, the next only
after the hub acknowledged the last (acks come only after commit). Brokers are senior brokers in
teams of five, so each update also goes live to four team mates. A director's device watches:
the time from a push leaving a broker's device to its update reaching the director's is the
push→broadcast latency. Beside it, in the same run: the same pushes straight into the hub's
group committer with the gate's results already worked out (what the commit alone costs: the
log, document, projection, receipt and audit rows it writes per update), and the same bytes in
the same batches into a plain table with raw asyncpg inserts (one transaction per batch, a pool
as large as the hub's, as many concurrent writers as devices), the database's own limit for
this work, measured twice. Writes bench/results/hub_ingest.*. Target (issue 3): ≥ 40% of the
raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import websockets
from rich.console import Console
from rich.progress import Progress

from bench._common import hub_in_process, percentile, write_results
from core.auth import DeviceKey
from core.identity import Principal, Role
from core.ids import new_id
from hub.accounts import Accounts
from hub.committer import GroupCommitter
from hub.database import Database
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import Change, Committed, HubStore
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc

RAW_TABLE = "bench_raw_updates"
TEAM_SIZE = 5
POOL_SIZE = 10
"""The hub's own pool size (`hub.database.Database`), so the raw writers get no more."""


def team_of(broker: int) -> str:
    """Brokers work in teams of ``TEAM_SIZE``; a senior broker's device reads the team's leads."""
    return f"team-{broker // TEAM_SIZE}"


def _hub_process(folder: Path, devices: int, conn: Connection) -> None:
    """The hub in its own process: one tenant, ``devices`` brokers and a director, one pairing
    code each; stops when asked."""
    asyncio.run(_serve_hub(folder, devices, conn))


async def _serve_hub(folder: Path, devices: int, conn: Connection) -> None:
    settings = HubSettings(data_dir=folder / "hub", port=0, sandbox_workers=2)
    tenant = f"bench-{new_id()}"  # a tenant of its own, so runs on one DATABASE_URL never meet
    async with HubServer(Hub(settings)) as server:
        accounts = server.hub.accounts
        await accounts.ensure_tenant(tenant, "Bench Realty")
        admin = Principal(tenant, f"{tenant}-admin", Role.ADMIN)
        await accounts.create_user(tenant, "admin@bench.test", "bench-password", Role.ADMIN,
                                   "Bench Admin", user_id=admin.user_id)
        users = [(f"{tenant}-director", Role.SALES_DIRECTOR, None)] + [
            (f"{tenant}-broker-{i}", Role.SENIOR_BROKER, team_of(i)) for i in range(devices)]
        codes = []
        for user_id, role, team in users:
            await accounts.create_user(tenant, f"{user_id}@bench.test", "bench-password", role,
                                       user_id, team_id=team, user_id=user_id)
            codes.append(await accounts.issue_pairing_code(admin, user_id, "ipad", 600))
        conn.send({"tenant": tenant, "url": server.url, "sync_url": server.sync_url, "codes": codes,
                   "database_url": server.hub.database_url})
        await asyncio.to_thread(conn.recv)  # stop


@dataclass
class BenchDevice:
    """One device on the wire: pushes prepared batches, records acks and what it receives."""

    user_id: str
    key: DeviceKey = field(default_factory=DeviceKey.generate)
    client_id: int = 0
    device_id: str = ""
    batches: list[list[p.PushItem]] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    acked_at: dict[str, float] = field(default_factory=dict)
    seq_of: dict[str, int] = field(default_factory=dict)
    guid_of: dict[str, str] = field(default_factory=dict)
    received: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    """guid → (arrival, the last seq of that document the item carries), in arrival order."""
    ws: websockets.ClientConnection | None = None
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    refused: list[p.Refusal] = field(default_factory=list)

    def arrival(self, guid: str, seq: int) -> float | None:
        """When the update ``seq`` of ``guid`` first reached this device."""
        return next((at for at, upto in self.received.get(guid, ()) if upto >= seq), None)

    async def connect(self, sync_url: str) -> asyncio.Task[None]:
        self.ws = await websockets.connect(sync_url, max_size=None)
        await self.ws.send(p.encode(p.Hello(self.device_id, 0, (self.client_id,))))
        challenge = p.decode(await self.ws.recv())  # type: ignore[arg-type]
        assert isinstance(challenge, p.Challenge), challenge
        await self.ws.send(p.encode(p.Auth(self.key.sign_challenge(challenge.nonce,
                                                                   self.device_id))))
        welcome = p.decode(await self.ws.recv())  # type: ignore[arg-type]
        assert isinstance(welcome, p.Welcome), welcome
        return asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            now = time.perf_counter()
            message = p.decode(frame)  # type: ignore[arg-type]
            if isinstance(message, p.PullBatch):
                for item in message.items:
                    # a snapshot (a document new to this reader) holds every update committed
                    # up to the batch's cursor; an update item holds its own seq
                    upto = message.cursor if item.kind is p.ItemKind.SNAPSHOT else item.seq
                    self.received.setdefault(item.guid, []).append((now, upto))
                if not message.more:
                    self.caught_up.set()
            elif isinstance(message, p.Ack):
                for update_id, seq in message.entries:
                    self.acked_at[update_id] = now
                    self.seq_of[update_id] = seq
                self.acked.set()
            elif isinstance(message, p.Refusal):
                self.refused.append(message)
                self.acked_at[message.update_id] = now
                self.acked.set()

    async def push_all(self, progress: Progress, task: int) -> None:
        """Each batch after the previous one was acknowledged (one batch in flight)."""
        assert self.ws is not None
        for batch in self.batches:
            ids = [item.update_id for item in batch]
            sent = time.perf_counter()
            for update_id in ids:
                self.sent_at[update_id] = sent
                self.guid_of[update_id] = next(i.guid for i in batch if i.update_id == update_id)
            await self.ws.send(p.encode(p.PushBatch(tuple(batch))))
            while not all(i in self.acked_at for i in ids):
                self.acked.clear()
                await self.acked.wait()
            progress.advance(task, len(batch))


def prepare(device: BenchDevice, tenant: str, number: int, updates: int, batch: int) -> None:
    """The device's pushes, made before the clock starts: a lead per 4 updates, each created
    and then edited (source, timeline, budget, a line of notes)."""
    leads = collection("leads")
    docs = [RecordDoc(leads, f"00000000-0000-4000-8{number:03d}-{i:012d}",
                      client_id=device.client_id) for i in range(max(1, updates // 4))]
    edits = [{"source": "walk-in"}, {"timeline": "3-6 months"}, {"budget_min": 45_000_000},
             {"notes": "Prefers a high floor with a sea view."}]
    items = []
    for n in range(updates):
        doc = docs[n % len(docs)]
        if n < len(docs):
            values: dict[str, object] = {"tenant_id": tenant, "owner_id": device.user_id,
                                         "team_id": team_of(number),
                                         "person_id": f"person-{number}-{n}"}
        else:
            values = edits[(n // len(docs) - 1) % len(edits)]
        items.append(p.PushItem(f"{device.user_id}-u{n}", doc.guid, doc.write(values)))
    device.batches = [items[i:i + batch] for i in range(0, len(items), batch)]


async def hub_run(seeded: dict[str, object], devices: int, updates: int, batch: int,
                  console: Console) -> dict[str, float]:
    codes: list[str] = seeded["codes"]  # type: ignore[assignment]
    tenant = str(seeded["tenant"])
    observer = BenchDevice(f"{tenant}-director", client_id=10_000)
    brokers = [BenchDevice(f"{tenant}-broker-{i}", client_id=10_001 + i) for i in range(devices)]
    async with httpx.AsyncClient(base_url=str(seeded["url"])) as http:
        for device, code in zip([observer, *brokers], codes, strict=True):
            r = await http.post("/api/devices/pair", json={
                "code": code, "name": device.user_id,
                "public_key": base64.b64encode(device.key.public_bytes).decode()})
            r.raise_for_status()
            device.device_id = r.json()["device_id"]
    for number, device in enumerate(brokers):
        prepare(device, tenant, number, updates, batch)
    readers = [await d.connect(str(seeded["sync_url"])) for d in [observer, *brokers]]
    await asyncio.gather(*(d.caught_up.wait() for d in [observer, *brokers]))
    total = devices * updates
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{devices} devices pushing", total=total)
        start = time.perf_counter()
        await asyncio.gather(*(d.push_all(progress, task) for d in brokers))
        elapsed = time.perf_counter() - start
    refused = [r for d in brokers for r in d.refused]
    if refused:
        raise SystemExit(f"the hub refused {len(refused)} benchmark updates, e.g. "
                         f"{refused[0].reason}: {refused[0].message}")
    pushed = [(d.guid_of[uid], seq, d.sent_at[uid]) for d in brokers
              for uid, seq in d.seq_of.items()]
    deadline = time.perf_counter() + 60
    while (None in (arrivals := [observer.arrival(g, s) for g, s, _ in pushed])
           and time.perf_counter() < deadline):
        await asyncio.sleep(0.05)
    if None in arrivals:
        raise SystemExit(f"the director's device never received {arrivals.count(None)} updates")
    broadcast = [at - sent for at, (_, _, sent) in zip(arrivals, pushed, strict=True)]  # type: ignore[operator]
    ack = [d.acked_at[uid] - d.sent_at[uid] for d in brokers for uid in d.sent_at]
    for d in [observer, *brokers]:
        assert d.ws is not None
        await d.ws.close()
    for reader in readers:
        reader.cancel()
    all_batches = [b for d in brokers for b in d.batches]
    return {"updates": total, "hub_s": elapsed, "hub_updates_per_s": total / elapsed,
            "ack_p50_ms": percentile(ack, 0.5) * 1e3, "ack_p99_ms": percentile(ack, 0.99) * 1e3,
            "broadcast_p50_ms": percentile(broadcast, 0.5) * 1e3,
            "broadcast_p99_ms": percentile(broadcast, 0.99) * 1e3,
            "bytes_per_update": sum(len(i.data) for b in all_batches for i in b) / total,
            "_batches": [[(d.device_id, i.update_id, i.guid, i.data) for i in b]  # type: ignore[dict-item]
                         for d in brokers for b in d.batches]}


async def raw_run(database_url: str, per_device: list[list[list[tuple[str, str, str, bytes]]]]
                  ) -> float:
    """The same bytes in the same batches into a plain table: updates/s."""
    pool = await asyncpg.create_pool(database_url, min_size=POOL_SIZE, max_size=POOL_SIZE)
    try:
        await pool.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        await pool.execute(
            f"CREATE TABLE {RAW_TABLE} (tenant_id text NOT NULL, seq bigserial, device_id text,"
            " update_id text, guid text, data bytea, PRIMARY KEY (tenant_id, seq))")

        async def writer(batches: list[list[tuple[str, str, str, bytes]]]) -> None:
            for batch in batches:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.executemany(
                        f"INSERT INTO {RAW_TABLE} (tenant_id, device_id, update_id, guid, data) "
                        "VALUES ($1, $2, $3, $4, $5)", [("bench", *row) for row in batch])

        start = time.perf_counter()
        await asyncio.gather(*(writer(b) for b in per_device))
        elapsed = time.perf_counter() - start
        total = sum(len(batch) for batches in per_device for batch in batches)
        count = await pool.fetchval(f"SELECT count(*) FROM {RAW_TABLE}")
        assert count == total, (count, total)
        await pool.execute(f"DROP TABLE {RAW_TABLE}")
        return total / elapsed
    finally:
        await pool.close()


async def commit_path_run(database_url: str, devices: int, updates: int, batch: int) -> float:
    """The same pushes straight into the hub's group committer, each change bringing its
    result as the gate would (so nothing is applied again): the log, document, projection,
    receipt and audit rows of the hub's commit, without websockets, gate or sandbox.
    Updates/s."""
    tenant = f"bench-commit-{new_id()}"
    pushers = [BenchDevice(f"{tenant}-broker-{i}", client_id=20_001 + i) for i in range(devices)]
    work: list[list[list[Change]]] = []
    for number, device in enumerate(pushers):
        prepare(device, tenant, number, updates, batch)
        docs: dict[str, RecordDoc] = {}
        states: dict[str, bytes] = {}
        device_batches = []
        for push in device.batches:
            changes = []
            for item in push:  # the result the gate hands over, worked out before the clock
                rid = item.guid.partition("/")[2]
                doc = docs.setdefault(item.guid, RecordDoc(collection("leads"), rid))
                base = states.get(item.guid, b"")
                doc.apply(item.data)
                states[item.guid] = doc.encode_state()
                changes.append(Change(item.guid, item.data, item.update_id, base=base,
                                      after=(states[item.guid], doc.project())))
            device_batches.append(changes)
        work.append(device_batches)
    async with Database(database_url, max_size=POOL_SIZE) as db:
        await Accounts(db).ensure_tenant(tenant, "Bench commit path")
        async with GroupCommitter(HubStore(db)) as committer:

            async def pusher(number: int, batches: list[list[Change]]) -> None:
                for changes in batches:
                    results = await committer.commit(
                        tenant, changes, user_id=pushers[number].user_id,
                        device_id=f"commit-device-{number}")
                    assert all(isinstance(r, Committed) for r in results), results

            start = time.perf_counter()
            await asyncio.gather(*(pusher(n, b) for n, b in enumerate(work)))
            elapsed = time.perf_counter() - start
    return devices * updates / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--updates", type=int, default=120, help="updates per device")
    parser.add_argument("--batch", type=int, default=10, help="updates per push batch")
    args = parser.parse_args()
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="velocity-ingest-bench-"))
    with hub_in_process(_hub_process, folder, args.devices) as ours:
        with console.status("starting the hub and pairing devices…"):
            seeded = ours.recv()
        figures = asyncio.run(hub_run(seeded, args.devices, args.updates, args.batch, console))
        batches = figures.pop("_batches")
        per_device = [batches[i::args.devices] for i in range(args.devices)]  # type: ignore[index]
        with console.status("the same pushes through the hub's commit path alone…"):
            commit_path = asyncio.run(commit_path_run(
                str(seeded["database_url"]), args.devices, args.updates, args.batch))
        with console.status("raw asyncpg inserts of the same bytes…"):
            raw = [asyncio.run(raw_run(str(seeded["database_url"]), per_device))
                   for _ in range(2)]
        ours.send("stop")
    raw_rate = sum(raw) / len(raw)
    figures.update(raw_updates_per_s=raw_rate, raw_runs=raw,
                   ratio=figures["hub_updates_per_s"] / raw_rate,
                   commit_path_updates_per_s=commit_path, commit_path_ratio=commit_path / raw_rate,
                   devices=args.devices, batch=args.batch)
    md = "\n".join([
        f"{args.devices} devices × {args.updates} updates ({figures['bytes_per_update']:.0f} B "
        f"each) in batches of {args.batch}, one batch in flight per device:", "",
        "| path | updates/s | push→ack p50 / p99 | push→broadcast p50 / p99 | vs raw |",
        "| --- | --- | --- | --- | --- |",
        f"| hub (gate + sandbox + log, ack after commit) | {figures['hub_updates_per_s']:,.0f} | "
        f"{figures['ack_p50_ms']:.1f} / {figures['ack_p99_ms']:.1f} ms | "
        f"{figures['broadcast_p50_ms']:.1f} / {figures['broadcast_p99_ms']:.1f} ms | "
        f"{figures['ratio']:.0%} |",
        f"| the hub's commit path alone (same rows: log, document, projection, receipt, audit;"
        f" group commit) | {commit_path:,.0f} | | | {figures['commit_path_ratio']:.0%} |",
        f"| raw asyncpg inserts, same bytes and batches | {figures['raw_updates_per_s']:,.0f} "
        f"({raw[0]:,.0f}, {raw[1]:,.0f}) | | | 100% |",
    ])
    console.print(md)
    console.print(f"written to {write_results('hub_ingest', figures, md)}")


if __name__ == "__main__":
    main()
