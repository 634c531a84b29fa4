"""Benchmark of the hub's ingest: sustained push throughput and push→broadcast latency.

Run: ``.venv/bin/python bench/hub_ingest.py [--devices 50] [--updates 120] [--batch 10]``.

The hub runs in its own process (as in production) on PostgreSQL: a database of its own on the
``DATABASE_URL`` server, made for the run and dropped at its end (never the database the URL
names), or a private one from `pgserver` when ``DATABASE_URL`` is unset. ``--devices``
brokers' devices connect over real websockets and each pushes
its own leads (creates, then field and note edits) in batches, one batch in flight, the next only
after the hub acknowledged the last (acks come only after commit). Brokers are senior brokers in
teams of five, so each update also goes live to four team mates. A director's device watches:
the time from a push leaving a broker's device to its update reaching the director's is the
push→broadcast latency. Beside it, in the same run: the same pushes straight into the hub's
group committer with the gate's results already worked out (what the commit alone costs: a log
row per update, holding its receipt and audit entry, and each changed document and projection
row once per transaction), and the same bytes in
the same batches into a plain table with raw asyncpg inserts (one transaction per batch, a pool
as large as the hub's, as many concurrent writers as devices), the database's own limit for
this work, measured twice. The load runs three times over the wire, each with fresh devices and
leads: clean, with 1 % hostile items mixed in, clean again. In the hostile run one more device
pushes unsafe bytes, another device's client id, a NUL character in a value and truncated
updates, one item a batch, spread over the run (the hub in the bench never blocks it, so it keeps
pushing to the end); its row shows the honest devices' throughput against the mean of the two
clean runs, one before and one after it, so the hub's warm-up favours neither side. Writes
bench/results/hub_ingest.*.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import pycrdt as Y
import websockets
from rich.console import Console
from rich.progress import Progress

from bench._common import (
    create_database,
    device_handshake,
    drop_database,
    hub_in_process,
    percentile,
    write_results,
)
from core.auth import DeviceKey
from core.identity import Principal, Role
from core.ids import new_id
from hub.accounts import Accounts
from hub.committer import GroupCommitter
from hub.database import Database
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import Change, Committed, HubStore, Judged, Version
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc

RAW_TABLE = "bench_raw_updates"
RETRY_PAUSE_S = 0.5
"""How long a bench device waits before pushing again what the hub refused for its own
trouble."""
HOSTILE_SHARE = 0.01
"""Hostile items per honest item in the hostile run."""
TEAM_SIZE = 5
POOL_SIZE = 10
"""The hub's own pool size (`hub.database.Database`), so the raw writers get no more."""
RUNS = ("clean", "hostile", "clean")
"""The runs over the wire, in order: the hostile one between two clean ones."""


def team_of(broker: int) -> str:
    """Brokers work in teams of ``TEAM_SIZE``; a senior broker's device reads the team's leads."""
    return f"team-{broker // TEAM_SIZE}"


def _hub_process(folder: Path, database_url: str | None, devices: int, conn: Connection) -> None:
    """The hub in its own process on ``database_url`` (None: a private embedded PostgreSQL):
    one tenant, ``devices`` brokers and a director, a pairing code each for every run of
    `RUNS` and one for the hostile device; stops when asked."""
    asyncio.run(_serve_hub(folder, database_url, devices, conn))


async def _serve_hub(folder: Path, database_url: str | None, devices: int,
                     conn: Connection) -> None:
    # The hostile device is never throttled or blocked here, so it pushes for the whole run.
    # The URL is always given, so the hub never falls back on DATABASE_URL's own database.
    settings = HubSettings(data_dir=folder / "hub", database_url=database_url, port=0,
                           sandbox_workers=2, max_offences=10**9, throttle_after=10**9)
    tenant = f"bench-{new_id()}"  # a tenant of its own, so runs on one DATABASE_URL never meet
    async with HubServer(Hub(settings)) as server:
        accounts = server.hub.accounts
        await accounts.ensure_tenant(tenant, "Bench Realty")
        admin = Principal(tenant, f"{tenant}-admin", Role.ADMIN)
        await accounts.create_user(tenant, "admin@bench.test", "bench-password", Role.ADMIN,
                                   "Bench Admin", user_id=admin.user_id)
        users = [(f"{tenant}-director", Role.SALES_DIRECTOR, None)] + [
            (f"{tenant}-broker-{i}", Role.SENIOR_BROKER, team_of(i)) for i in range(devices)]
        for user_id, role, team in [*users, (f"{tenant}-hostile", Role.SENIOR_BROKER, "x")]:
            await accounts.create_user(tenant, f"{user_id}@bench.test", "bench-password", role,
                                       user_id, team_id=team, user_id=user_id)
        codes = [await accounts.issue_pairing_code(admin, user_id, "ipad", 600)
                 for _ in RUNS for user_id, _, _ in users]
        codes.append(await accounts.issue_pairing_code(admin, f"{tenant}-hostile", "ipad", 600))
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
    retry: dict[str, float] = field(default_factory=dict)
    """Update ids the hub refused for its own trouble, and the pause before pushing again."""
    retries: int = 0

    def arrival(self, guid: str, seq: int) -> float | None:
        """When the update ``seq`` of ``guid`` first reached this device."""
        return next((at for at, upto in self.received.get(guid, ()) if upto >= seq), None)

    async def connect(self, sync_url: str) -> asyncio.Task[None]:
        self.ws = await device_handshake(sync_url, self.device_id, self.key, self.client_id)
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
            elif isinstance(message, p.Refusal) and message.reason in p.RETRYABLE_REASONS:
                self.retry[message.update_id] = RETRY_PAUSE_S  # the hub's trouble: again
                self.retries += 1
                self.acked.set()
            elif isinstance(message, p.Refusal):
                self.refused.append(message)
                self.acked_at[message.update_id] = now
                self.acked.set()

    async def push_all(self, progress: Progress, task: int) -> None:
        """Each batch after the previous one was answered (one batch in flight); what the hub
        refused for its own trouble is pushed again after a pause."""
        assert self.ws is not None
        for batch in self.batches:
            ids = [item.update_id for item in batch]
            sent = time.perf_counter()
            for update_id in ids:
                self.sent_at[update_id] = sent
                self.guid_of[update_id] = next(i.guid for i in batch if i.update_id == update_id)
            pending = batch
            while pending:
                await self.ws.send(p.encode(p.PushBatch(tuple(pending))))
                while not all(i.update_id in self.acked_at or i.update_id in self.retry
                              for i in pending):
                    self.acked.clear()
                    await self.acked.wait()
                pending = [i for i in pending if i.update_id in self.retry]
                if pending:
                    await asyncio.sleep(max(self.retry[i.update_id] for i in pending))
                    for i in pending:
                        del self.retry[i.update_id]
            progress.advance(task, len(batch))


def prepare(device: BenchDevice, tenant: str, number: int, updates: int, batch: int,
            run: int = 0) -> None:
    """The device's pushes, made before the clock starts: a lead per 4 updates, each created
    and then edited (source, timeline, budget, a line of notes); ``run`` keeps leads of
    different runs apart."""
    leads = collection("leads")
    docs = [RecordDoc(leads, f"00000000-0000-4{run:03d}-8{number:03d}-{i:012d}",
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


def hostile_item(n: int, tenant: str, device: BenchDevice, victim_client: int) -> p.PushItem:
    """The ``n``th hostile item, in turn: unsafe bytes, another device's client id, a NUL
    character in a value, a truncated update."""
    leads = collection("leads")
    record_id = f"00000000-0000-4999-8999-{n:012d}"
    values = {"tenant_id": tenant, "owner_id": device.user_id, "team_id": "x",
              "person_id": f"hostile-{n}"}
    kind = n % 4
    if kind == 0:
        data = b"\x01\x01\x90\x03\x00\x1f"
    elif kind == 1:
        data = RecordDoc(leads, record_id, client_id=victim_client).write(values)
    elif kind == 2:  # raw pycrdt: RecordDoc refuses to write a NUL
        doc = Y.Doc(client_id=device.client_id)
        fields = doc.get("fields", type=Y.Map)
        for key, value in {**values, "person_id": "NUL\x00inside"}.items():
            fields[key] = value
        data = doc.get_update()
    else:
        data = RecordDoc(leads, record_id, client_id=device.client_id).write(values)[:-3]
    return p.PushItem(f"hostile-{n}", f"leads/{record_id}", data)


async def push_hostile(device: BenchDevice, tenant: str, count: int, interval_s: float,
                       victim_client: int, honest_done: asyncio.Event) -> int:
    """Push ``count`` hostile items, one a batch, one every ``interval_s`` while the honest
    devices push; how many were sent."""
    sent = 0
    while sent < count and not honest_done.is_set():
        assert device.ws is not None
        await device.ws.send(p.encode(p.PushBatch((
            hostile_item(sent, tenant, device, victim_client),))))
        sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(honest_done.wait(), interval_s)
    return sent


async def hub_run(seeded: dict[str, object], devices: int, updates: int, batch: int,
                  console: Console, run: int, *, hostile_interval_s: float | None = None
                  ) -> dict[str, float]:
    """Run number ``run`` over the wire (fresh devices and leads): a clean one, or
    (``hostile_interval_s``) one with a hostile device pushing 1 % hostile items one every
    that many seconds."""
    hostile_run = hostile_interval_s is not None
    all_codes: list[str] = seeded["codes"]  # type: ignore[assignment]
    codes = all_codes[run * (devices + 1):(run + 1) * (devices + 1)]
    tenant = str(seeded["tenant"])
    observer = BenchDevice(f"{tenant}-director", client_id=10_000 + run * 1000)
    brokers = [BenchDevice(f"{tenant}-broker-{i}", client_id=10_001 + run * 1000 + i)
               for i in range(devices)]
    hostile = BenchDevice(f"{tenant}-hostile", client_id=30_000)
    paired = [(observer, codes[0]), *zip(brokers, codes[1:], strict=True)]
    if hostile_run:
        paired.append((hostile, all_codes[-1]))
    async with httpx.AsyncClient(base_url=str(seeded["url"])) as http:
        for device, code in paired:
            r = await http.post("/api/devices/pair", json={
                "code": code, "name": device.user_id,
                "public_key": base64.b64encode(device.key.public_bytes).decode()})
            r.raise_for_status()
            device.device_id = r.json()["device_id"]
    for number, device in enumerate(brokers):
        prepare(device, tenant, number, updates, batch, run)
    online = [observer, *brokers, *([hostile] if hostile_run else [])]
    readers = [await d.connect(str(seeded["sync_url"])) for d in online]
    await asyncio.gather(*(d.caught_up.wait() for d in online))
    total = devices * updates
    hostile_count = round(total * HOSTILE_SHARE) if hostile_run else 0
    honest_done = asyncio.Event()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{devices} devices pushing"
                                 + (f", one pushing {hostile_count} hostile items"
                                    if hostile_run else ""),
                                 total=total)
        start = time.perf_counter()
        poison = asyncio.create_task(push_hostile(
            hostile, tenant, hostile_count, hostile_interval_s or 0.0, brokers[0].client_id,
            honest_done))
        await asyncio.gather(*(d.push_all(progress, task) for d in brokers))
        elapsed = time.perf_counter() - start
        honest_done.set()
        hostile_sent = await poison
    if hostile_run:  # every hostile item answered, and refused
        deadline = time.perf_counter() + 30
        while len(hostile.refused) < hostile_sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        if len(hostile.refused) < hostile_sent or hostile.acked_at.keys() - {
                r.update_id for r in hostile.refused}:
            raise SystemExit(f"{hostile_sent} hostile items sent, {len(hostile.refused)} "
                             "refused: the hub took one")
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
    for d in online:
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
            "retried": sum(d.retries for d in brokers), "hostile_sent": hostile_count and
            len(hostile.refused),
            "hostile_reasons": sorted({r.reason for r in hostile.refused}),  # type: ignore[dict-item]
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
    result as the gate would (so nothing is applied again): the log, document and projection
    rows of the hub's commit, without websockets, gate or sandbox.
    Updates/s."""
    tenant = f"bench-commit-{new_id()}"
    pushers = [BenchDevice(f"{tenant}-broker-{i}", client_id=20_001 + i) for i in range(devices)]
    work: list[list[list[Change]]] = []
    for number, device in enumerate(pushers):
        prepare(device, tenant, number, updates, batch)
        docs: dict[str, RecordDoc] = {}
        versions: dict[str, Version] = {}
        device_batches = []
        for push in device.batches:
            changes = []
            for item in push:  # the result the gate hands over, worked out before the clock
                rid = item.guid.partition("/")[2]
                doc = docs.setdefault(item.guid, RecordDoc(collection("leads"), rid))
                base = versions.get(item.guid) or Version(0)  # a new record
                doc.apply(item.data)
                versions[item.guid] = Version()
                changes.append(Change(item.guid, item.data, item.update_id, base=base,
                                      after=Judged(versions[item.guid], doc.project())))
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


def measure(args: argparse.Namespace, database_url: str | None, console: Console
            ) -> tuple[list[dict[str, Any]], float, list[float]]:
    """Every run of `RUNS` over the wire, then the commit path alone and the raw inserts
    twice, on ``database_url`` (None: a private embedded PostgreSQL)."""
    folder = Path(tempfile.mkdtemp(prefix="velocity-ingest-bench-"))
    total = args.devices * args.updates
    runs: list[dict[str, Any]] = []
    with hub_in_process(_hub_process, folder, database_url, args.devices) as ours:
        with console.status("starting the hub and pairing devices…"):
            seeded = ours.recv()
        for number, kind in enumerate(RUNS):
            interval = None
            if kind == "hostile":  # spread over a run as long as the clean ones so far
                clean_s = [r["hub_s"] for r in runs if r["kind"] == "clean"]
                interval = sum(clean_s) / len(clean_s) / (total * HOSTILE_SHARE)
            figures = asyncio.run(hub_run(seeded, args.devices, args.updates, args.batch,
                                          console, number, hostile_interval_s=interval))
            runs.append({"kind": kind, **figures})
            console.print(f"run {number + 1} ({kind}): {figures['hub_updates_per_s']:,.0f} "
                          "updates/s")
        batches = runs[0]["_batches"]
        for r in runs:
            del r["_batches"]
        per_device = [batches[i::args.devices] for i in range(args.devices)]
        with console.status("the same pushes through the hub's commit path alone…"):
            commit_path = asyncio.run(commit_path_run(
                str(seeded["database_url"]), args.devices, args.updates, args.batch))
        with console.status("raw asyncpg inserts of the same bytes…"):
            raw = [asyncio.run(raw_run(str(seeded["database_url"]), per_device))
                   for _ in range(2)]
        ours.send("stop")
    return runs, commit_path, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--updates", type=int, default=120, help="updates per device")
    parser.add_argument("--batch", type=int, default=10, help="updates per push batch")
    args = parser.parse_args()
    console = Console()
    load_before = os.getloadavg()
    server_url = os.environ.get("DATABASE_URL")
    # a database of the run's own, never the one DATABASE_URL names (others use it)
    url = asyncio.run(create_database(server_url, "velocity_bench_ingest")) if server_url else None
    try:
        runs, commit_path, raw = measure(args, url, console)
    finally:
        if server_url and url:
            asyncio.run(drop_database(server_url, url))
    load_after = os.getloadavg()
    clean = [r for r in runs if r["kind"] == "clean"]
    hostile = next(r for r in runs if r["kind"] == "hostile")
    clean_rate = sum(r["hub_updates_per_s"] for r in clean) / len(clean)
    raw_rate = sum(raw) / len(raw)
    vs_clean = hostile["hub_updates_per_s"] / clean_rate
    figures: dict[str, Any] = {
        "devices": args.devices, "updates_per_device": args.updates, "batch": args.batch,
        "database": "own database on DATABASE_URL's server" if url else "embedded (pgserver)",
        "bytes_per_update": runs[0]["bytes_per_update"],
        "runs": runs, "hub_updates_per_s": clean_rate,
        "clean_runs_updates_per_s": [r["hub_updates_per_s"] for r in clean],
        "hostile_updates_per_s": hostile["hub_updates_per_s"], "hostile_vs_clean": vs_clean,
        "hostile_within_10_percent": vs_clean >= 0.9,
        "raw_updates_per_s": raw_rate, "raw_runs": raw, "ratio": clean_rate / raw_rate,
        "commit_path_updates_per_s": commit_path, "commit_path_ratio": commit_path / raw_rate,
        "load_average": {"before": load_before, "after": load_after}}

    def row(number: int, r: dict[str, Any]) -> str:
        if r["kind"] == "clean":
            label = f"hub, run {number} clean (gate + sandbox + log, ack after commit)"
            rate = f"{r['hub_updates_per_s']:,.0f}"
        else:
            label = (f"hub, run {number} with 1 % hostile items from one more device "
                     f"({r['hostile_sent']} refused: {', '.join(r['hostile_reasons'])})")
            rate = (f"{r['hub_updates_per_s']:,.0f} (**{vs_clean:.0%}** of the clean runs' "
                    f"mean, {clean_rate:,.0f})")
        return (f"| {label} | {rate} | {r['ack_p50_ms']:,.0f} / {r['ack_p99_ms']:,.0f} ms | "
                f"{r['broadcast_p50_ms']:,.0f} / {r['broadcast_p99_ms']:,.0f} ms | "
                f"{r['hub_updates_per_s'] / raw_rate:.0%} |")

    loads = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(load_before, load_after, strict=True))
    md = "\n".join([
        f"{args.devices} devices × {args.updates} updates ({figures['bytes_per_update']:.0f} B "
        f"each) in batches of {args.batch}, one batch in flight per device; {figures['database']}; "
        f"the runs over the wire in this order: {', '.join(RUNS)}:", "",
        "| path | updates/s | push→ack p50 / p99 | push→broadcast p50 / p99 | vs raw |",
        "| --- | --- | --- | --- | --- |",
        *(row(n, r) for n, r in enumerate(runs, 1)),
        f"| the hub's commit path alone (same rows: log with receipt and audit, document,"
        f" projection; group commit) | {commit_path:,.0f} | | | "
        f"{figures['commit_path_ratio']:.0%} |",
        f"| raw asyncpg inserts, same bytes and batches | {raw_rate:,.0f} "
        f"({raw[0]:,.0f}, {raw[1]:,.0f}) | | | 100% |", "",
        f"Hostile run against the clean runs' mean: {vs_clean:.0%} (requirement: within 10 %, "
        f"{'met' if vs_clean >= 0.9 else 'not met'}). Load average (1, 5, 15 min) before/after: "
        f"{loads}.",
    ])
    console.print(md)
    console.print(f"written to {write_results('hub_ingest', figures, md)}")


if __name__ == "__main__":
    main()
