"""Soak: 200 devices in worker processes against a hub process for 10 minutes, with faults.

Run: ``.venv/bin/python bench/soak.py [--devices 200] [--minutes 10] [--workers 8] [--quick]``.
``--quick`` is 20 devices, 1 minute and a 3,000-update backlog (a quick look, not a soak).

The hub is a real ``velocity hub serve`` process on PostgreSQL (``DATABASE_URL``'s server, a
database of its own, or a private `pgserver`). The devices are real edge agents (SQLite
replicas, websockets), spread over ``--workers`` spawned processes (bench/soak_worker.py); this
process pairs them, runs the fault plan, samples every process's memory and checks the result.
Brokers are junior brokers with four devices each writing their own leads (owner-scoped: a
device holds its broker's leads, and every write goes live to the broker's three other devices).

1. **Backlog drain.** With the devices offline (a partition), each writes its share of
   ``--backlog`` updates; then all connect at once. Timed from the heal until every outbox is
   empty, against the hub's ingest rate measured in the same run right after: bare pushers
   sending prepared updates as fast as the hub acknowledges them.
2. **Soak.** Every device writes at random (one write every ``--interval`` seconds on average:
   a new lead, or a unique token appended to the notes of a lead it holds) while devices drop
   off and come back (their agent stopped, restarted after up to 15 s), the hub's log is
   compacted, and the hub process is killed (``kill -9``) and restarted once, half-way.
3. **Convergence.** Writing stops; timed until every outbox is empty and every device holds
   exactly its broker's leads as the hub has them.
4. **Checks.** Every lead a device created is on the hub, every appended token is in the hub's
   notes of its lead exactly once (none unknown), no update was refused, every replica passes
   ``PRAGMA integrity_check``. Any loss is printed in red and makes the run exit non-zero.

Writes bench/results/soak.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import psutil
import websockets
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench import soak_worker
from bench._common import write_results
from bench.hub_ingest import BenchDevice, prepare, team_of
from core.identity import Principal, Role
from hub.service import Hub
from hub.settings import HubSettings

ROOT = Path(__file__).resolve().parents[1]
VELOCITY = [sys.executable, "-c", "from cli.main import app; app()"]
TENANT = "t1"
PASSWORD = "soak password 1234"
DEVICES_PER_USER = 4
INGEST_PUSHERS = 20
INGEST_BATCH = 50
SAMPLE_S = 2.0
DRAIN_LIMIT_S = 300.0
"""A backlog not drained by then is reported as such (with what was left) and the run goes on."""
CONVERGE_LIMIT_S = 300.0
ANSWER_LIMIT_S = 900.0
"""How long a command to the workers may go unanswered (pairing 200 devices is the slowest)."""
TOKEN = re.compile(r"\[d\d+\.\d+\]")
console = Console()
MiB = 2**20


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def database() -> tuple[str, Any]:
    """A fresh database: on DATABASE_URL's server when set, else a private pgserver."""
    server = os.environ.get("DATABASE_URL")
    pg = None
    if server is None:
        import pgserver

        pg = pgserver.get_server(Path(tempfile.mkdtemp(prefix="velocity-soak-pg-")),
                                 cleanup_mode="delete")
        server = pg.get_uri()
    name = f"velocity_soak_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(server)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return server.rsplit("/", 1)[0] + f"/{name}" if pg is None else pg.get_uri(name), pg


async def accounts(url: str, devices: int, users: int) -> tuple[
        list[tuple[int, str, str]], list[tuple[str, str]]]:
    """Junior brokers of tenant t1 and a pairing code per device: (device, user, code) for the
    soak's devices and (user, code) for the ingest pushers (one broker each)."""
    async with Hub(HubSettings(database_url=url, sandbox_workers=1)) as hub:
        await hub.accounts.ensure_tenant(TENANT, "T1")
        admin = Principal(TENANT, "t1-admin", Role.ADMIN)
        await hub.accounts.create_user(TENANT, "admin@t1.test", PASSWORD, Role.ADMIN, "Admin",
                                       user_id=admin.user_id)
        names = [f"t1-broker{u}" for u in range(users)]
        pushers = [f"t1-ingest{i}" for i in range(INGEST_PUSHERS)]
        teams = [None] * users + [team_of(i) for i in range(INGEST_PUSHERS)]  # as prepared
        for user_id, team in zip(names + pushers, teams, strict=True):
            await hub.accounts.create_user(TENANT, f"{user_id}@t1.test", PASSWORD,
                                           Role.JUNIOR_BROKER, user_id, team_id=team,
                                           user_id=user_id)
        codes = [(d, names[d % users], await hub.accounts.issue_pairing_code(
            admin, names[d % users], "ipad", 3600)) for d in range(devices)]
        ingest = [(u, await hub.accounts.issue_pairing_code(admin, u, "ipad", 3600))
                  for u in pushers]
    return codes, ingest


class HubProcess:
    def __init__(self, url: str, port: int, log: Path) -> None:
        self.url, self.port, self.log = url, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": self.url,
               "VELOCITY_PORT": str(self.port), "VELOCITY_SANDBOX_WORKERS": "2"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*VELOCITY, "hub", "serve"], env=env, cwd=ROOT,
                                         stdout=out, stderr=out, start_new_session=True)

    def kill_9(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill_9()

    def rss(self) -> int:
        """The hub's memory with its sandbox workers (0 while it is down)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0
        try:
            parent = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
        except psutil.NoSuchProcess:
            return 0

    async def ready(self) -> None:
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"{self.base_url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)


class Workers:
    """The worker processes: commands out, answers and status in."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.reports: Any = ctx.Queue()
        self.pipes = []
        self.procs = []
        for wid in range(count):
            ours, theirs = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=soak_worker.main, args=(wid, ours, self.reports),
                               daemon=True)
            proc.start()
            self.pipes.append(theirs)
            self.procs.append(proc)
        self.status: dict[int, dict[str, int]] = {}
        self.answers: asyncio.Queue[tuple[int, str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                wid, name, payload = await asyncio.to_thread(self.reports.get, True, 0.5)
            except queue.Empty:
                continue
            if name == "status":
                self.status[wid] = payload
            else:
                await self.answers.put((wid, name, payload))

    def tell(self, wid: int, *command: Any) -> None:
        self.pipes[wid].send(command)

    async def ask_all(self, name: str, *args: Any, answer: str, per_worker: list[Any] | None = None
                      ) -> dict[int, Any]:
        """Send a command to every worker (``per_worker`` args appended) and wait for each
        one's answer (a RuntimeError naming the silent ones after ``ANSWER_LIMIT_S``)."""
        for wid in range(len(self.procs)):
            self.tell(wid, name, *args, *([per_worker[wid]] if per_worker else []))
        out: dict[int, Any] = {}
        asked = time.monotonic()
        while len(out) < len(self.procs):
            try:
                wid, got, payload = await asyncio.wait_for(self.answers.get(), 5)
            except TimeoutError:
                dead = [p.pid for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"worker processes {dead} died") from None
                if time.monotonic() - asked > ANSWER_LIMIT_S:
                    silent = sorted(set(range(len(self.procs))) - set(out))
                    raise RuntimeError(f"workers {silent} gave no answer to {name!r} within "
                                       f"{ANSWER_LIMIT_S:g} s") from None
                continue
            if got == "error":
                raise RuntimeError(f"worker {wid} failed:\n{payload}")
            assert got == answer, (got, answer)
            out[wid] = payload
        return out

    def totals(self) -> dict[str, int]:
        keys = ("pending", "held", "writes")
        return {k: sum(s.get(k, 0) for s in self.status.values()) for k in keys}

    def rss(self) -> list[int]:
        out = []
        for p in self.procs:
            try:
                out.append(psutil.Process(p.pid).memory_info().rss)
            except psutil.NoSuchProcess:
                out.append(0)
        return out

    def close(self) -> None:
        for wid, proc in enumerate(self.procs):
            if proc.is_alive():
                self.tell(wid, "quit")
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        if self._reader is not None:
            self._reader.cancel()


class Sampler:
    """Memory of every worker and of the hub, every ``SAMPLE_S`` seconds, with the phase."""

    def __init__(self, workers: Workers, hub: HubProcess) -> None:
        self.workers, self.hub = workers, hub
        self.phase = "start"
        self.samples: list[dict[str, Any]] = []
        self.start = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def run(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_S)

    def sample(self) -> None:
        self.samples.append({"t": round(time.monotonic() - self.start, 1), "phase": self.phase,
                             "workers_mib": [round(r / MiB) for r in self.workers.rss()],
                             "hub_mib": round(self.hub.rss() / MiB),
                             "held": self.workers.totals()["held"]})

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()

    def of(self, phase: str) -> list[dict[str, Any]]:
        return [s for s in self.samples if s["phase"] == phase]


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"), console=console, transient=True)


def status_line(workers: Workers, hub: HubProcess) -> str:
    t = workers.totals()
    rss = workers.rss()
    return (f"writes {t['writes']:,}  unsent {t['pending']:,}  docs held {t['held']:,}  "
            f"worker RSS max {max(rss, default=0) / MiB:.0f} MiB  hub {hub.rss() / MiB:.0f} MiB")


async def wait_drained(workers: Workers, hub: HubProcess, total: int, label: str) -> int:
    """Until every outbox is empty (in a status from every worker, taken after now), or
    ``DRAIN_LIMIT_S`` passed; the updates left unsent."""
    workers.status.clear()
    deadline = time.monotonic() + DRAIN_LIMIT_S
    with progress() as bar:
        task = bar.add_task(label, total=total, info="")
        while len(workers.status) < len(workers.procs) or workers.totals()["pending"] > 0:
            left = workers.totals()["pending"] if workers.status else total
            if time.monotonic() > deadline:
                return left
            bar.update(task, completed=total - left, info=status_line(workers, hub))
            await asyncio.sleep(0.2)
    return 0


async def connect(device: BenchDevice, sync_url: str, tries: int = 5) -> asyncio.Task[None]:
    """Open a bare pusher's session, again after a pause when a busy hub refuses the
    handshake (it still drains the backlog's leftovers)."""
    for _ in range(tries - 1):
        try:
            return await device.connect(sync_url)
        except (AssertionError, OSError, websockets.WebSocketException):
            await asyncio.sleep(5)
    return await device.connect(sync_url)


async def ingest_ceiling(hub: HubProcess, codes: list[tuple[str, str]], updates: int) -> float:
    """The hub's ingest rate (updates/s): bare devices pushing prepared leads, one batch in
    flight each, as fast as the hub acknowledges them."""
    pushers = [BenchDevice(user_id, client_id=900_000 + i) for i, (user_id, _) in
               enumerate(codes)]
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as http:
        for device, (_, code) in zip(pushers, codes, strict=True):
            r = await http.post("/api/devices/pair", json={
                "code": code, "name": device.user_id,
                "public_key": base64.b64encode(device.key.public_bytes).decode()})
            r.raise_for_status()
            device.device_id = r.json()["device_id"]
    each = max(1, updates // len(pushers))
    for number, device in enumerate(pushers):
        prepare(device, TENANT, number, each, INGEST_BATCH, run=7)
    sync_url = f"ws://127.0.0.1:{hub.port}/api/sync/ws"
    readers = [await connect(d, sync_url) for d in pushers]
    await asyncio.gather(*(d.caught_up.wait() for d in pushers))
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("hub ingest (bare pushers)", total=each * len(pushers))
        start = time.monotonic()
        await asyncio.gather(*(d.push_all(bar, task) for d in pushers))
        elapsed = time.monotonic() - start
    for d in pushers:
        assert d.ws is not None
        await d.ws.close()
    for reader in readers:
        reader.cancel()
    refused = [r for d in pushers for r in d.refused]
    if refused:
        raise RuntimeError(f"the hub refused {len(refused)} ingest updates: {refused[0]}")
    return each * len(pushers) / elapsed


async def compact(url: str) -> bool:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url,
           "VELOCITY_SANDBOX_WORKERS": "1"}
    proc = await asyncio.create_subprocess_exec(
        *VELOCITY, "hub", "compact", TENANT, "--keep", "200", env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0


async def soak(workers: Workers, hub: HubProcess, url: str, devices: int, minutes: float,
               interval_s: float, written: int, rng: random.Random) -> dict[str, Any]:
    """Writes with faults for ``minutes`` (``written``: writes made before); the writes made,
    the fault log and when the last fault was."""
    owner = {d: d % len(workers.procs) for d in range(devices)}
    for wid in range(len(workers.procs)):
        workers.tell(wid, "write", interval_s, rng.randrange(2**32))
    faults: Counter[str] = Counter()
    start = time.monotonic()
    end = start + minutes * 60
    hub_kill_at = start + minutes * 30
    compact_every = max(15.0, minutes * 6)
    next_compact = start + compact_every / 2
    last_fault = start
    hub_down_s = 0.0
    with progress() as bar:
        task = bar.add_task("soak", total=minutes * 60, info="")
        next_fault = start + 3
        while (now := time.monotonic()) < end:
            if hub_kill_at and now >= hub_kill_at:
                hub.kill_9()
                hub.start()
                await hub.ready()
                hub_down_s = time.monotonic() - now
                faults["hub kill -9 and restart"] += 1
                hub_kill_at = 0
                last_fault = time.monotonic()
            elif now >= next_compact:
                if not await compact(url):
                    raise RuntimeError("velocity hub compact failed")
                faults["log compactions"] += 1
                last_fault = time.monotonic()
                next_compact = now + compact_every
            elif now >= next_fault:
                for d in rng.sample(range(devices), k=max(1, devices // 25)):
                    workers.tell(owner[d], "restart", d, rng.uniform(1, 15))
                    faults["device disconnects"] += 1
                last_fault = time.monotonic()
                next_fault = last_fault + rng.uniform(2, 6)
            bar.update(task, completed=now - start, info=status_line(workers, hub))
            await asyncio.sleep(0.5)
    quiet = await workers.ask_all("quiet", answer="quiet")
    return {"writes": sum(quiet.values()) - written, "faults": dict(faults),
            "last_fault": last_fault, "quiet_at": time.monotonic(), "hub_down_s": hub_down_s}


async def hub_leads(url: str, users: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The hub's leads of the soak's brokers, by broker, as ``ROW_COLUMNS`` tuples."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(f"SELECT {', '.join(soak_worker.ROW_COLUMNS)} FROM crm_leads "
                                "WHERE tenant_id = $1 AND owner_id = ANY($2::text[])",
                                TENANT, sorted(users))
    finally:
        await conn.close()
    out: dict[str, list[tuple[Any, ...]]] = {u: [] for u in users}
    for r in rows:
        out[r["owner_id"]].append(tuple(r))
    return out


async def converge(workers: Workers, url: str, users: set[str], since: float
                   ) -> tuple[float | None, int]:
    """Seconds from ``since`` until every outbox is empty and every device's leads equal the
    hub's for its broker (None: not within ``CONVERGE_LIMIT_S``); devices still off."""
    with progress() as bar:
        task = bar.add_task("converging", total=None, info="")
        while True:
            answers = await workers.ask_all("digests", answer="digests")
            hub = {u: soak_worker.digest(rows) for u, rows in (await hub_leads(url, users)).items()}
            states = [s for a in answers.values() for s in a.values()]
            off = sum(1 for user, pending, dig in states if pending or dig != hub[user])
            if off == 0:
                return time.monotonic() - since, 0
            if time.monotonic() - since > CONVERGE_LIMIT_S:
                return None, off
            bar.update(task, info=f"{off} devices not yet equal to the hub")
            await asyncio.sleep(0.5)


def check(finished: dict[int, dict[str, Any]], hub: dict[str, list[tuple[Any, ...]]]
          ) -> dict[str, int]:
    """Every write of every device against the hub: losses, duplicates and the rest."""
    notes = {row[0]: row[3] or "" for rows in hub.values() for row in rows}
    owners = {row[0]: row[1] for rows in hub.values() for row in rows}
    known: set[str] = set()
    out = Counter({"writes_checked": 0, "acknowledged": 0, "lost_acknowledged": 0,
                   "lost_leads": 0, "lost_tokens": 0,
                   "duplicated_tokens": 0, "unknown_tokens": 0, "refusals": 0,
                   "unsent_at_end": 0, "replicas_failing_integrity_check": 0})
    for device in finished.values():
        for lead in device["created"]:
            out["writes_checked"] += 1
            out["lost_leads"] += owners.get(lead) != device["user_id"]
        for lead, token in device["tokens"]:
            out["writes_checked"] += 1
            known.add(token)
            times = notes.get(lead, "").count(token)
            out["lost_tokens"] += times == 0
            out["duplicated_tokens"] += times > 1
        for lead in device["acked_created"]:
            out["acknowledged"] += 1
            out["lost_acknowledged"] += owners.get(lead) != device["user_id"]
        for lead, token in device["acked_tokens"]:
            out["acknowledged"] += 1
            out["lost_acknowledged"] += notes.get(lead, "").count(token) != 1
        out["refusals"] += device["refusals"]
        out["unsent_at_end"] += device["unsent"]
        out["replicas_failing_integrity_check"] += device["integrity"] != ["ok"]
    out["unknown_tokens"] = sum(1 for text in notes.values() for t in TOKEN.findall(text)
                                if t not in known)
    return dict(out)


def memory_summary(sampler: Sampler) -> dict[str, Any]:
    """Peak memory per worker and of the hub, and at the soak's start and end."""
    samples = sampler.samples
    soaking = sampler.of("soak")
    return {
        "workers_peak_mib": [max(s["workers_mib"][w] for s in samples)
                             for w in range(len(samples[0]["workers_mib"]))],
        "hub_peak_mib": max(s["hub_mib"] for s in samples),
        "soak_start": soaking[0] if soaking else None,
        "soak_end": soaking[-1] if soaking else None,
        "samples": samples,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    url, pg = await database()
    folder = Path(tempfile.mkdtemp(prefix="velocity-soak-"))
    hub = HubProcess(url, free_port(), folder / "hub.log")
    workers = Workers(args.workers)
    sampler = Sampler(workers, hub)
    try:
        workers.start()
        users_n = max(1, args.devices // DEVICES_PER_USER)
        codes, ingest_codes = await accounts(url, args.devices, users_n)
        users = {u for _, u, _ in codes}
        hub.start()
        await hub.ready()
        sampler.run()
        sampler.phase = "pairing"
        shares = [[c for c in codes if c[0] % args.workers == w] for w in range(args.workers)]
        with progress() as bar:
            bar.add_task(f"pairing {args.devices} devices in {args.workers} processes",
                         total=None, info="")
            await workers.ask_all("pair", folder, hub.base_url, answer="ready",
                                  per_worker=shares)
        # 1. backlog: written offline (a partition), then all heal at once
        sampler.phase = "offline writes"
        per_device = max(1, args.backlog // args.devices)
        with progress() as bar:
            bar.add_task(f"offline writes ({per_device} a device)", total=None, info="")
            written = await workers.ask_all("offline_writes", per_device, answer="written",
                                            per_worker=[rng.randrange(2**32)
                                                        for _ in range(args.workers)])
        backlog = sum(written.values())
        sampler.phase = "drain"
        heal = time.monotonic()
        await workers.ask_all("online", answer="online")
        online_s = time.monotonic() - heal
        undrained = await wait_drained(workers, hub, backlog, "drain after the partition heals")
        drain_s = time.monotonic() - heal
        sampler.phase = "ingest"
        ingest_rate = await ingest_ceiling(hub, ingest_codes, args.ingest)
        # 2. soak with faults, 3. convergence
        sampler.phase = "soak"
        result = await soak(workers, hub, url, args.devices, args.minutes, args.interval,
                            backlog, rng)
        sampler.phase = "converge"
        converge_s, off = await converge(workers, url, users, result["quiet_at"])
        since_fault = (None if converge_s is None
                       else converge_s + result["quiet_at"] - result["last_fault"])
        # 4. checks
        sampler.phase = "checks"
        finished = await workers.ask_all("finish", answer="finished")
        checks = check({n: d for a in finished.values() for n, d in a.items()},
                       await hub_leads(url, users))
        checks["devices_not_converged"] = off
    finally:
        sampler.stop()
        workers.close()
        hub.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if pg is not None:
            pg.cleanup()
        else:  # a database of its own on a shared server: leave nothing behind
            conn = await asyncpg.connect(os.environ["DATABASE_URL"])
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            await conn.close()
    drain_rate = (backlog - undrained) / drain_s
    return {
        "devices": args.devices, "workers": args.workers, "brokers": users_n,
        "minutes": args.minutes, "seed": args.seed, "write_interval_s": args.interval,
        "load_average": list(os.getloadavg()),
        "backlog_updates": backlog, "drain_s": drain_s, "undrained": undrained,
        "all_devices_started_s": online_s,
        "drain_updates_per_s": drain_rate,
        "hub_ingest_updates_per_s": ingest_rate, "drain_vs_ingest": drain_rate / ingest_rate,
        "soak_writes": result["writes"], "faults": result["faults"],
        "hub_down_s": result["hub_down_s"],
        "converge_after_writes_stop_s": converge_s,
        "converge_after_last_fault_s": since_fault, "checks": checks,
        "memory": memory_summary(sampler),
    }


def markdown(f: dict[str, Any]) -> str:
    m, c = f["memory"], f["checks"]
    start, end = m["soak_start"], m["soak_end"]
    conv = (f"{f['converge_after_writes_stop_s']:.1f} s after writes stopped, "
            f"{f['converge_after_last_fault_s']:.1f} s after the last fault"
            if f["converge_after_writes_stop_s"] is not None
            else f"**not converged**: {c['devices_not_converged']} devices differ")
    faults = ", ".join(f"{n} {k}" for k, n in f["faults"].items())
    workers = " / ".join(f"{p:.0f}" for p in m["workers_peak_mib"])
    rows = [
        ("devices", f"{f['devices']} in {f['workers']} worker processes "
                    f"({f['brokers']} brokers, 4 devices each)"),
        ("backlog after the partition", f"{f['backlog_updates']:,} updates"),
        ("drain after the heal", ("" if not f["undrained"] else
                                  f"**not drained: {f['undrained']:,} left after** ")
         + f"{f['drain_s']:.1f} s: **{f['drain_updates_per_s']:,.0f} "
                                 "updates/s** (every agent started after "
                                 f"{f['all_devices_started_s']:.1f} s)"),
        ("hub ingest rate, same run (bare pushers)",
         f"{f['hub_ingest_updates_per_s']:,.0f} updates/s"),
        ("drain rate / ingest rate", f"**{f['drain_vs_ingest']:.2f}×**"),
        ("soak", f"{f['minutes']:g} min, {f['soak_writes']:,} writes"),
        ("faults during the soak", faults + f" (hub down {f['hub_down_s']:.1f} s)"),
        ("converged", conv),
        ("writes checked on the hub", f"{c['writes_checked']:,} "
                                      f"({c['acknowledged']:,} acknowledged to their device)"),
        ("acknowledged writes not on the hub exactly once", f"**{c['lost_acknowledged']}**"),
        ("writes not on the hub / duplicated / unknown there",
         f"{c['lost_leads'] + c['lost_tokens']} / {c['duplicated_tokens']} / "
         f"{c['unknown_tokens']}"),
        ("refused updates, unsent at the end", f"{c['refusals']}, {c['unsent_at_end']}"),
        ("replicas failing `PRAGMA integrity_check`",
         f"{c['replicas_failing_integrity_check']}"),
        ("peak RSS per worker process", f"{workers} MiB"),
        ("peak RSS of the hub (with its sandbox workers)", f"{m['hub_peak_mib']} MiB"),
    ]
    if start and end:
        rows.append(("worker RSS, soak start → end (sum)",
                     f"{sum(start['workers_mib']):,} → {sum(end['workers_mib']):,} MiB, "
                     f"documents held {start['held']:,} → {end['held']:,}"))
        rows.append(("hub RSS, soak start → end", f"{start['hub_mib']} → {end['hub_mib']} MiB"))
    load = ", ".join(f"{x:.1f}" for x in f["load_average"])
    return (f"# Soak: {f['devices']} devices, {f['minutes']:g} min\n\n"
            "| figure | value |\n| --- | --- |\n"
            + "".join(f"| {k} | {v} |\n" for k, v in rows)
            + f"\nLoad average at the end (1, 5, 15 min): {load}.\n")


def losses(checks: dict[str, int]) -> int:
    keys = ("lost_acknowledged", "lost_leads", "lost_tokens", "duplicated_tokens",
            "unknown_tokens", "refusals", "unsent_at_end", "replicas_failing_integrity_check",
            "devices_not_converged")
    return sum(checks[k] for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=30_000)
    parser.add_argument("--ingest", type=int, default=6_000,
                        help="updates the bare pushers send to measure the hub's ingest rate")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="mean seconds between one device's writes during the soak")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true",
                        help="20 devices in 4 processes, 1 minute, a 3,000-update backlog")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.workers, args.minutes = 20, 4, 1.0
        args.backlog, args.ingest, args.interval = 3_000, 2_000, 2.0
    figures = asyncio.run(run(args))
    md = markdown(figures)
    path = write_results("soak", figures, md)
    console.print(md)
    console.print(f"written to {path}")
    if lost := losses(figures["checks"]):
        console.print(f"[bold red]{lost} writes lost, duplicated, refused or replicas not "
                      f"converged or corrupt: {figures['checks']}[/]")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
