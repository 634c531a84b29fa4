"""Our hub beside the sync servers its users would otherwise pick: same workloads, one run.

Run: ``.venv/bin/python bench/peers.py [--quick] [--only hub] [--shape "50/1 paced 3/s"]``
(``--only hub``: our hub alone, no peers installed; ``--shape``: that shape alone).

Installs into a temporary folder, and starts on loopback one at a time: Hocuspocus 4.7 with its
SQLite extension (npm ``@hocuspocus/server`` + ``@hocuspocus/extension-sqlite``) at its defaults
(2 s debounce, 10 s max) and at debounce 0; pycrdt-websocket with its SQLite store (PyPI, in a
virtualenv of its own); and our hub (``velocity hub serve``) on PostgreSQL (``DATABASE_URL`` or a
private server from `pgserver`). Each shape is N clients making E one-key edits each, client i on
document i mod D, as fast as they can (burst) or at a fixed rate (paced). The peers are driven by
stock ``yjs`` clients (``@hocuspocus/provider``, ``y-websocket``) in one Node.js process; our hub by
simulated paired devices spread over ``--device-procs`` Python processes (default: one per CPU, at
least 2; bench/peers_worker.py) that write each edit as an edge does (a durable local change,
then pushed with whatever else is pending, up to ``peers_worker.WINDOW`` batches in flight,
acknowledged after commit), all on one schedule from a shared start time. They record receipt
times and do not apply what they receive; for our hub the note column also gives each edit's
push → acknowledgement time and how late the device processes' own event loops ran (the share of
a receipt time that is the simulated devices' load, not the hub's). With ``DATABASE_URL`` our
hub runs in a database of its own on that server, dropped afterwards.

After each run the server is killed with SIGKILL at once (a power cut) and its store is read back
from disk: every acknowledged edit (for pycrdt-websocket, which has no acknowledgement: every edit
made) must be in it, and missing ones are counted loudly. Writes ``bench/results/peers.json``,
``.md`` and ``peers.png``, ratios first (ours ÷ peer).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import pycrdt
from rich.console import Console
from rich.progress import Progress

from bench import peers_worker
from bench._common import RESULTS, create_database, drop_database, percentile, write_results
from core.auth import DeviceKey
from core.identity import Principal, Role
from core.ids import new_id
from hub.accounts import Accounts
from hub.app import SYNC_PATH
from hub.database import Database, start_embedded_postgres, stop_embedded_postgres
from hub.server import free_port
from hub.store import HubStore, LocalWriter

HERE = Path(__file__).resolve().parent / "peers"
NPM_PACKAGES = ["@hocuspocus/server@4.7.0", "@hocuspocus/extension-sqlite@4.7.0",
                "@hocuspocus/provider@4.7.0", "yjs@13", "y-websocket@3", "ws@8",
                "better-sqlite3@12"]
PASSWORD = "bench-password"


@dataclass(frozen=True)
class Shape:
    name: str
    clients: int
    docs: int
    edits: int
    rate: float = 0.0
    """Edits per second per client; 0 is a burst."""


@dataclass
class Outcome:
    """One system on one shape."""

    system: str
    shape: str
    edits: int
    made_s: float
    acked_s: float | None
    delivered_s: float | None
    latencies_ms: list[float]
    missing_after_kill: int
    checked: int
    cpu_s: float
    peak_rss_mb: float
    stored_s: float | None = None
    """For a system without acknowledgements: when its store on disk held every edit."""
    ack_ms: list[float] = field(default_factory=list)
    """Our hub: each edit's time from its push to its acknowledgement (after commit)."""
    device_lag_ms: list[float] = field(default_factory=list)
    """Our hub: how late the simulated devices' own event loops ran (adds to receipt times)."""
    note: str = ""

    @property
    def rate(self) -> float | None:
        """Edits/s: acknowledged, or (no acknowledgements in the protocol) stored on disk."""
        end = self.acked_s if self.acked_s is not None else self.stored_s
        return self.edits / end if end else None

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {"system": self.system, "shape": self.shape, "edits": self.edits,
                "edits_per_s": self.rate, "acked_s": self.acked_s,
                "delivered_s": self.delivered_s, "stored_s": self.stored_s,
                "made_s": self.made_s,
                "visible_p50_ms": percentile(lat, 0.5) if lat else None,
                "visible_p99_ms": percentile(lat, 0.99) if lat else None,
                "ack_p50_ms": percentile(self.ack_ms, 0.5) if self.ack_ms else None,
                "ack_p99_ms": percentile(self.ack_ms, 0.99) if self.ack_ms else None,
                "device_lag_p99_ms": (percentile(self.device_lag_ms, 0.99)
                                      if self.device_lag_ms else None),
                "missing_after_kill": self.missing_after_kill, "checked": self.checked,
                "server_cpu_s": self.cpu_s, "server_peak_rss_mb": self.peak_rss_mb,
                "note": self.note}

    def remarks(self) -> str:
        """The report's note column: push → ACK and the devices' loop lag where measured, then
        the note."""
        s = self.summary()
        parts = [f"ack p50 / p99 {s['ack_p50_ms']:.1f} / {s['ack_p99_ms']:.1f} ms"
                 if self.ack_ms else "",
                 f"devices' own loop lag p99 {s['device_lag_p99_ms']:.1f} ms"
                 if self.device_lag_ms else "", self.note]
        return "; ".join(p for p in parts if p)


# --- servers ------------------------------------------------------------------------------------

class Server:
    """A server process in its own session (so SIGKILL takes its workers too), with CPU and
    peak memory read from /proc while it runs."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.peak_rss = 0

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if match := re.search(pattern, line):
                return match
        raise SystemExit(f"{self.proc.args[0]} did not start:\n{''.join(lines)}")

    def _pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-s", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def cpu_s(self) -> float:
        """User + system CPU of every process of the server's session so far."""
        total = 0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def sample_rss(self) -> None:
        rss = 0
        for pid in self._pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if m := re.search(r"VmRSS:\s+(\d+) kB", status):
                rss += int(m[1]) * 1024
        self.peak_rss = max(self.peak_rss, rss)

    def kill(self) -> None:
        """A power cut: SIGKILL to the whole session, nothing flushed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def sampling(server: Server, coro: Any) -> tuple[Any, float]:
    """Run ``coro`` while sampling the server's memory; returns its result and the CPU used."""
    cpu_before = server.cpu_s()
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            server.sample_rss()
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    try:
        result = await coro
    finally:
        stop.set()
        await sampler
    return result, server.cpu_s() - cpu_before


# --- stock Yjs clients against the peers ---------------------------------------------------------

async def yjs_run(system: str, kind: str, url: str, server: Server, shape: Shape, node: Path,
                  timeout_s: float) -> tuple[dict[str, Any], float]:
    config = {"kind": kind, "url": url, "clients": shape.clients, "docs": shape.docs,
              "edits": shape.edits, "rate": shape.rate, "timeout_s": timeout_s}

    async def drive() -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            "node", str(node / "yjs_clients.mjs"), json.dumps(config), cwd=node,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{system}: the Yjs clients failed:\n{err.decode()[-2000:]}")
        return json.loads(out.decode().strip().splitlines()[-1])

    return await sampling(server, drive())


def hocuspocus_stored(db: Path) -> dict[str, set[str]]:
    """Keys of map "m" in each stored document (Hocuspocus keeps one merged state per doc)."""
    out: dict[str, set[str]] = {}
    with sqlite3.connect(db) as conn:
        for name, data in conn.execute('SELECT name, data FROM "documents"'):
            doc = pycrdt.Doc()
            doc.apply_update(data)
            out[name] = set(doc.get("m", type=pycrdt.Map).keys())
    return out


def pycrdt_stored(db: Path, pyvenv: Path) -> dict[str, set[str]]:
    """Keys of map "m" in each document, read back through pycrdt-websocket's own store API
    (checkpoints and the updates after them); nothing while it has not made its tables."""
    done = subprocess.run([str(pyvenv / "bin" / "python"), str(HERE / "pycrdt_read.py"),
                           str(db)], capture_output=True, text=True)
    if done.returncode != 0:
        return {}
    return {name: set(keys) for name, keys in json.loads(done.stdout).items()}


async def until_stored(db: Path, pyvenv: Path, shape: Shape, deadline: float) -> float | None:
    """Poll pycrdt-websocket's store until it holds every edit; when it did (epoch s)."""
    while time.time() < deadline:
        stored = await asyncio.to_thread(pycrdt_stored, db, pyvenv)
        if missing_keys(stored, shape) == 0:
            return time.time()
        await asyncio.sleep(0.5)
    return None


def missing_keys(stored: dict[str, set[str]], shape: Shape) -> int:
    missing = 0
    for client in range(shape.clients):
        keys = stored.get(f"doc-{client % shape.docs}", set())
        missing += sum(f"{client}:{n}" not in keys for n in range(shape.edits))
    return missing


async def peer_run(system: str, shape: Shape, folder: Path, node: Path, pyvenv: Path,
                   timeout_s: float) -> Outcome:
    port = free_port()
    db = folder / f"{system.replace(' ', '_')}-{shape.name.replace('/', '_')}.db"
    if system.startswith("hocuspocus"):
        argv = ["node", str(node / "hocuspocus_server.mjs"), str(port), str(db)]
        if "debounce 0" in system:
            argv.append("0")
        server = Server(argv, node)
        kind, url = "hocuspocus", f"ws://127.0.0.1:{port}"
    else:
        server = Server([str(pyvenv / "bin" / "python"), str(HERE / "pycrdt_server.py"),
                         str(port), str(db)], folder)
        kind, url = "y-websocket", f"ws://127.0.0.1:{port}"
    stored_at = None
    try:
        server.wait_for("ready")
        run, cpu = await yjs_run(system, kind, url, server, shape, node, timeout_s)
        if kind == "y-websocket":
            stored_at = await until_stored(db, pyvenv, shape, time.time() + min(timeout_s, 30))
    finally:
        server.kill()
    stored = hocuspocus_stored(db) if kind == "hocuspocus" else pycrdt_stored(db, pyvenv)
    start = run["start"]
    return Outcome(
        system, shape.name, run["edits"], (run["made"] - start) / 1e3,
        (run["acked"] - start) / 1e3 if run["acked"] else None,
        (run["delivered"] - start) / 1e3 if run["delivered"] and shape.clients > shape.docs
        else None,
        run["latencies"], missing_keys(stored, shape), shape.clients * shape.edits, cpu,
        server.peak_rss / 2**20, stored_at - start / 1e3 if stored_at else None,
        note="" if run["missing"] == 0 else f"{run['missing']} edits never reached every peer")


# --- our hub ------------------------------------------------------------------------------------

async def setup_tenant(database_url: str, hub_url: str, shape: Shape
                       ) -> tuple[str, list[tuple[int, str, str, bytes]], list[str]]:
    """A tenant of its own with an admin, one senior broker per device and D leads of one
    client, every device paired: the tenant, each device's (number, user id, device id, private
    key bytes) and the documents' guids.

    Device i's user is in team ``doc-<i mod D>`` and lead d belongs to team ``doc-<d>`` (leads
    are owner-scoped), so a device's scope is its document, as a Yjs client subscribes to its
    document alone: a device of the whole tenant would receive every other document's edits
    too (49 times the deliveries at 50/50), which no client of the peers does."""
    tenant = f"peers-{new_id()}"
    admin = Principal(tenant, f"{tenant}-admin", Role.ADMIN)
    users = [f"{tenant}-broker-{n}" for n in range(shape.clients)]
    keys = [DeviceKey.generate() for _ in users]
    async with Database(database_url, max_size=2) as db:
        accounts = Accounts(db)
        await accounts.ensure_tenant(tenant, "Peers bench")
        await accounts.create_user(tenant, f"admin@{tenant}.test", PASSWORD, Role.ADMIN, "Admin",
                                   user_id=admin.user_id)
        codes = []
        for n, user_id in enumerate(users):
            await accounts.create_user(tenant, f"{user_id}@{tenant}.test", PASSWORD,
                                       Role.SENIOR_BROKER, user_id,
                                       team_id=f"doc-{n % shape.docs}", user_id=user_id)
            codes.append(await accounts.issue_pairing_code(admin, user_id, "ipad", 600))
        writer = LocalWriter(HubStore(db), 1 << 52 | 7)
        person = new_id()
        await writer.write(admin, "people", person, {"full_name": "Shared client",
                                                     "tenant_id": tenant}, create=True)
        guids = []
        for d in range(shape.docs):
            lead = new_id()
            await writer.write(admin, "leads", lead, {
                "tenant_id": tenant, "person_id": person, "owner_id": users[d],
                "team_id": f"doc-{d}"}, create=True)
            guids.append(f"leads/{lead}")
    async with httpx.AsyncClient(base_url=hub_url, timeout=60) as http:
        devices = []
        for number, (user_id, key, code) in enumerate(zip(users, keys, codes, strict=True)):
            r = await http.post("/api/devices/pair", json={
                "code": code, "name": user_id,
                "public_key": base64.b64encode(key.public_bytes).decode()})
            r.raise_for_status()
            devices.append((number, user_id, r.json()["device_id"], key.to_bytes()))
    return tenant, devices, guids


class DeviceProcesses:
    """The simulated devices spread over spawned processes (bench/peers_worker.py), round
    robin; each answers on its pipe."""

    def __init__(self, plans: list[peers_worker.Plan]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.procs = []
        self.pipes = []
        for plan in plans:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=peers_worker.main, args=(plan, theirs), daemon=True)
            proc.start()
            theirs.close()
            self.procs.append(proc)
            self.pipes.append(ours)

    async def answers(self, expect: str, limit_s: float) -> list[Any]:
        """Each process's next answer, which must be ``expect``."""
        deadline = time.monotonic() + limit_s
        out = []
        for proc, pipe in zip(self.procs, self.pipes, strict=True):
            while not await asyncio.to_thread(pipe.poll, 0.2):
                if not proc.is_alive():
                    raise RuntimeError(f"device process {proc.pid} died")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"device process {proc.pid} gave no {expect!r} within "
                                       f"{limit_s:g} s")
            name, payload = pipe.recv()
            if name == "error":
                raise RuntimeError(f"device process {proc.pid} failed:\n{payload}")
            assert name == expect, (name, expect)
            out.append(payload)
        return out

    def tell(self, *command: Any) -> None:
        for pipe in self.pipes:
            pipe.send(command)

    def close(self) -> None:
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in self.pipes:
            pipe.close()


async def hub_run(shape: Shape, database_url: str, folder: Path, timeout_s: float,
                  device_procs: int) -> Outcome:
    port = free_port()
    server = Server([str(Path(sys.executable).with_name("velocity")), "--log-level", "WARNING",
                     "hub", "serve", "--port", str(port)], folder,
                    env={"DATABASE_URL": database_url, "COLUMNS": "200",
                         "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    workers: DeviceProcesses | None = None
    try:
        server.wait_for(r"hub listening on", timeout=120)
        hub_url = f"http://127.0.0.1:{port}"
        tenant, devices, guids = await setup_tenant(database_url, hub_url, shape)
        count = max(1, min(device_procs, len(devices)))
        workers = DeviceProcesses([
            peers_worker.Plan(f"ws://127.0.0.1:{port}{SYNC_PATH}", devices[i::count], guids,
                              shape.clients, shape.edits, shape.rate, timeout_s)
            for i in range(count)])
        await workers.answers("ready", 120)

        async def drive() -> list[dict[str, Any]]:
            start = time.time() + 0.5  # every process starts its schedule at once
            workers.tell("start", start)
            limit = 0.5 + (shape.edits / shape.rate if shape.rate else 0) + timeout_s + 120
            return [{**result, "start": start}
                    for result in await workers.answers("result", limit)]

        results, cpu = await sampling(server, drive())
    finally:
        if workers is not None:
            workers.close()
        server.kill()
    start = results[0]["start"]
    made_at = max(r["made_at"] for r in results)
    made = {k: t for r in results for k, t in r["made"].items()}
    seen: dict[tuple[int, int], list[float]] = {}
    for r in results:
        for k, times in r["seen"].items():
            seen.setdefault(k, []).extend(times)
    for times in seen.values():
        times.sort()
    acked = {uid: t for r in results for uid, t in r["acked"].items()}
    sent = {uid: t for r in results for uid, t in r["sent"].items()}
    refused = [uid for r in results for uid in r["refused"]]
    # As when one process polled: acknowledged once the edits are made and every one is acked,
    # delivered once also every edit reached its `peers` other devices.
    acked_at = (max(made_at, *acked.values()) if len(acked) >= shape.clients * shape.edits
                else None)
    peers = shape.clients // shape.docs - 1
    delivered_at = None
    if peers and all(len(seen.get(k, ())) >= peers for k in made):
        delivered_at = max(acked_at or made_at, *(seen[k][peers - 1] for k in made))
    latencies = [(seen[k][peers - 1] - t) * 1e3 for k, t in made.items()
                 if peers and len(seen.get(k, ())) >= peers]
    ack_ms = [(t - sent[uid]) * 1e3 for uid, t in acked.items() if uid in sent]
    lags = [lag for r in results for lag in r["loop_lag_ms"]]
    stored = await stored_update_ids(database_url, tenant)
    missing = len(set(acked) - stored - set(refused))
    return Outcome("velocity hub", shape.name, len(made), made_at - start,
                   acked_at - start if acked_at else None,
                   delivered_at - start if delivered_at else None, latencies, missing,
                   len(acked), cpu, server.peak_rss / 2**20, ack_ms=ack_ms, device_lag_ms=lags,
                   note=f"{len(refused)} refused" if refused else "")


async def stored_update_ids(database_url: str, tenant: str) -> set[str]:
    """Update ids on disk (a log row holds its update id: its receipt)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT update_id FROM hub_updates WHERE tenant_id = $1 AND update_id IS NOT NULL",
            tenant)
    finally:
        await conn.close()
    return {r["update_id"] for r in rows}


# --- set-up, report -----------------------------------------------------------------------------

def install(folder: Path, console: Console) -> tuple[Path, Path]:
    node = folder / "node"
    node.mkdir()
    for script in ("hocuspocus_server.mjs", "yjs_clients.mjs"):
        (node / script).write_text((HERE / script).read_text())
    (node / "package.json").write_text('{"private": true, "type": "module"}')
    with console.status("npm: Hocuspocus, its SQLite extension, yjs, y-websocket…"):
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", *NPM_PACKAGES],
                       cwd=node, check=True, capture_output=True)
    pyvenv = folder / "pyvenv"
    with console.status("pip: pycrdt-websocket and its SQLite store in a virtualenv…"):
        subprocess.run([sys.executable, "-m", "venv", str(pyvenv)], check=True)
        subprocess.run([str(pyvenv / "bin" / "pip"), "install", "--quiet", "pycrdt-websocket",
                        "websockets"], check=True, capture_output=True)
    return node, pyvenv


def versions(node: Path, pyvenv: Path) -> dict[str, str]:
    def npm_version(name: str) -> str:
        return json.loads((node / "node_modules" / name / "package.json").read_text())["version"]

    pip = subprocess.run([str(pyvenv / "bin" / "pip"), "show", "pycrdt-websocket"],
                         capture_output=True, text=True).stdout
    return {"hocuspocus": npm_version("@hocuspocus/server"), "yjs": npm_version("yjs"),
            "pycrdt-websocket": re.search(r"Version: (\S+)", pip)[1]}  # type: ignore[index]


def report(outcomes: list[Outcome], shapes: list[Shape], versions: dict[str, str]) -> str:
    ours = {o.shape: o for o in outcomes if o.system == "velocity hub"}
    lines = ["| shape | vs Hocuspocus defaults | vs Hocuspocus debounce 0 | vs pycrdt-websocket |",
             "| --- | --- | --- | --- |"]
    for shape in shapes if len(ours) < len(outcomes) else []:  # ratios need the peers
        cells = []
        for peer in ("hocuspocus (defaults)", "hocuspocus (debounce 0)", "pycrdt-websocket"):
            theirs = next(o for o in outcomes if o.system == peer and o.shape == shape.name)
            mine = ours[shape.name]
            if mine.rate and theirs.rate:
                cells.append(f"{mine.rate / theirs.rate:.2f}×")
            else:
                cells.append("n/a")
        lines.append(f"| {shape.name} | {' | '.join(cells)} |")
    lines += ["", "| shape | system | edits/s | made in s | p50 / p99 visible ms | lost after "
              "SIGKILL | server CPU s | peak RSS MB | note |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for o in outcomes:
        s = o.summary()
        vis = (f"{s['visible_p50_ms']:.1f} / {s['visible_p99_ms']:.1f}"
               if s["visible_p50_ms"] is not None else "")
        rate = f"{o.rate:,.0f}" if o.rate else "did not finish"
        lost = f"**{o.missing_after_kill} of {o.checked}**" if o.missing_after_kill else "0"
        lines.append(f"| {o.shape} | {o.system} | {rate} | {o.made_s:.2f} | {vis} | {lost} | "
                     f"{o.cpu_s:.1f} | {o.peak_rss_mb:.0f} | {o.remarks()} |")
    if not versions:
        return "\n".join([*lines[2:], "", "Our hub alone (`--only hub`), acked after commit."])
    lines += ["", f"Hocuspocus {versions['hocuspocus']} (SQLite extension; defaults: 2 s "
              "debounce, 10 s max — an acknowledgement is not durable), yjs "
              f"{versions['yjs']}, pycrdt-websocket {versions['pycrdt-websocket']} (SQLite store; "
              "its protocol has no acknowledgement: its rate is edits until its store on disk "
              "held them all, polled every 100 ms); our hub acknowledges after commit."]
    return "\n".join(lines)


def chart(outcomes: list[Outcome], shapes: list[Shape]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(o.system for o in outcomes))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        rates = [next((o.rate or 0 for o in outcomes if o.system == system
                       and o.shape == s.name), 0) for s in shapes]
        ax.bar([x + i * width for x in range(len(shapes))], rates, width, label=system)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(shapes))], [s.name for s in shapes])
    ax.set_ylabel("edits/s (acknowledged, or delivered)")
    ax.set_title("Sync servers on one 2-core machine, same workloads")
    ax.legend()
    fig.tight_layout()
    path = RESULTS / "peers.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small shapes (a minute or two) instead of the full run")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a run may take after its last edit")
    parser.add_argument("--only", choices=["hub"], help="run our hub alone (no peers)")
    parser.add_argument("--shape", help='run this shape alone, e.g. "50/1 paced 3/s"')
    parser.add_argument("--device-procs", type=int, default=max(2, os.cpu_count() or 1),
                        help="processes our hub's simulated devices are spread over "
                        "(default: one per CPU, at least 2)")
    args = parser.parse_args()
    edits = 40 if args.quick else 200
    shapes = [Shape("10/10", 10, 10, edits), Shape("10/1", 10, 1, edits),
              Shape("50/50", 50, 50, edits), Shape("50/1", 50, 1, edits),
              Shape("50/1 paced 3/s", 50, 1, 30 if args.quick else edits, 3.0)]
    if args.shape:
        shapes = [s for s in shapes if s.name == args.shape]
        if not shapes:
            raise SystemExit(f"no shape {args.shape!r}; see the module doc")
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="velocity-peers-bench-"))
    embedded = folder / "pg"
    server_url = os.environ.get("DATABASE_URL")
    database_url = (asyncio.run(create_database(server_url, "velocity_bench_peers"))
                    if server_url else start_embedded_postgres(embedded))
    outcomes: list[Outcome] = []
    try:
        systems = ["hocuspocus (defaults)", "hocuspocus (debounce 0)", "pycrdt-websocket",
                   "velocity hub"]
        found: dict[str, str] = {}
        if args.only == "hub":
            systems = ["velocity hub"]
            node = pyvenv = folder
        else:
            node, pyvenv = install(folder, console)
            found = versions(node, pyvenv)
        with Progress(console=console) as progress:
            task = progress.add_task("runs", total=len(shapes) * len(systems))
            for shape in shapes:
                for system in systems:
                    progress.update(task, description=f"{shape.name}: {system}")
                    if system == "velocity hub":
                        outcome = asyncio.run(hub_run(shape, database_url, folder, args.timeout,
                                                      args.device_procs))
                    else:
                        outcome = asyncio.run(peer_run(system, shape, folder, node, pyvenv,
                                                       args.timeout))
                    outcomes.append(outcome)
                    if outcome.missing_after_kill:
                        console.print(f"[bold red]{system} lost {outcome.missing_after_kill} "
                                      f"acknowledged edits of {shape.name} after SIGKILL[/]")
                    progress.advance(task)
    finally:
        if server_url:
            asyncio.run(drop_database(server_url, database_url))
        else:
            stop_embedded_postgres(embedded)
        shutil.rmtree(folder, ignore_errors=True)
    md = report(outcomes, shapes, found)
    if args.only or args.shape:  # a partial run: printed, not written over the full results
        console.print(md)
        return
    png = chart(outcomes, shapes)
    console.print(md)
    path = write_results("peers", {"versions": found, "quick": args.quick,
                                   "runs": [o.summary() for o in outcomes]}, md)
    console.print(f"written to {path} and {png}")


if __name__ == "__main__":
    main()
