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
simulated paired devices in one Python process that write each edit as an edge does (a durable
local change, then pushed with whatever else is pending, up to ``WINDOW`` batches in flight,
acknowledged after commit). They record receipt times and do not apply what they receive.

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
import websockets
from rich.console import Console
from rich.progress import Progress

from bench._common import RESULTS, device_handshake, percentile, write_results
from core.auth import DeviceKey
from core.identity import Principal, Role
from core.ids import new_id
from hub.accounts import Accounts
from hub.app import SYNC_PATH
from hub.database import Database, start_embedded_postgres, stop_embedded_postgres
from hub.server import free_port
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc

HERE = Path(__file__).resolve().parent / "peers"
NPM_PACKAGES = ["@hocuspocus/server@4.7.0", "@hocuspocus/extension-sqlite@4.7.0",
                "@hocuspocus/provider@4.7.0", "yjs@13", "y-websocket@3", "ws@8",
                "better-sqlite3@12"]
WINDOW = 8
"""Push batches a simulated device keeps in flight (each: whatever is pending, up to 200)."""
PASSWORD = "bench-password"
EDIT = re.compile(rb"e(\d+)x(\d+)\.")


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
                "missing_after_kill": self.missing_after_kill, "checked": self.checked,
                "server_cpu_s": self.cpu_s, "server_peak_rss_mb": self.peak_rss_mb,
                "note": self.note}


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
        people = collection("people")
        async for frame in self.ws:
            now = time.time()
            message = p.decode(frame)  # type: ignore[arg-type]
            if isinstance(message, p.PullBatch):
                for item in message.items:
                    if item.kind is p.ItemKind.SNAPSHOT and item.guid not in self.docs:
                        self.docs[item.guid] = RecordDoc(
                            people, item.guid.partition("/")[2], client_id=self.client_id,
                            state=item.data)
                    for client, n in EDIT.findall(item.data):
                        seen.setdefault((int(client), int(n)), []).append(now)
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
        update = self.docs[guid].write({"city": f"e{self.number}x{n}."})
        update_id = f"{self.device_id}-{n}"
        made[(self.number, n)] = now
        self.sent[update_id] = now
        self.pending.append(p.PushItem(update_id, guid, update))
        self.wake.set()


async def setup_tenant(database_url: str, hub_url: str, shape: Shape) -> tuple[str, list[Device],
                                                                               list[str]]:
    """A tenant of its own with an admin and one sales director per device (directors may write
    every record), D contacts made through the REST API, every device paired."""
    tenant = f"peers-{new_id()}"
    admin = Principal(tenant, f"{tenant}-admin", Role.ADMIN)
    devices = [Device(n, f"{tenant}-director-{n}") for n in range(shape.clients)]
    async with Database(database_url, max_size=2) as db:
        accounts = Accounts(db)
        await accounts.ensure_tenant(tenant, "Peers bench")
        await accounts.create_user(tenant, f"admin@{tenant}.test", PASSWORD, Role.ADMIN, "Admin",
                                   user_id=admin.user_id)
        codes = []
        for device in devices:
            await accounts.create_user(tenant, f"{device.user_id}@{tenant}.test", PASSWORD,
                                       Role.SALES_DIRECTOR, device.user_id, team_id="floor",
                                       user_id=device.user_id)
            codes.append(await accounts.issue_pairing_code(admin, device.user_id, "ipad", 600))
    async with httpx.AsyncClient(base_url=hub_url, timeout=60) as http:
        r = await http.post("/api/auth/login", json={"email": f"admin@{tenant}.test",
                                                     "password": PASSWORD})
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        guids = []
        for d in range(shape.docs):
            r = await http.post("/api/crm/contacts", headers=auth, json={"values": {
                "full_name": f"Shared client {d}"}})
            r.raise_for_status()
            guids.append(f"people/{r.json()['id']}")
        for device, code in zip(devices, codes, strict=True):
            r = await http.post("/api/devices/pair", json={
                "code": code, "name": device.user_id,
                "public_key": base64.b64encode(device.key.public_bytes).decode()})
            r.raise_for_status()
            device.device_id = r.json()["device_id"]
    return tenant, devices, guids


async def hub_run(shape: Shape, database_url: str, folder: Path, timeout_s: float) -> Outcome:
    port = free_port()
    server = Server([str(Path(sys.executable).with_name("velocity")), "--log-level", "WARNING",
                     "hub", "serve", "--port", str(port)], folder,
                    env={"DATABASE_URL": database_url, "COLUMNS": "200",
                         "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        server.wait_for(r"hub listening on", timeout=120)
        hub_url = f"http://127.0.0.1:{port}"
        tenant, devices, guids = await setup_tenant(database_url, hub_url, shape)
        made: dict[tuple[int, int], float] = {}
        seen: dict[tuple[int, int], list[float]] = {}
        readers = [await d.connect(f"ws://127.0.0.1:{port}{SYNC_PATH}", seen) for d in devices]
        await asyncio.wait_for(asyncio.gather(*(d.bootstrapped.wait() for d in devices)), 60)
        assert all(len(d.docs) == shape.docs for d in devices), "bootstrap incomplete"
        done = asyncio.Event()

        async def drive() -> tuple[float, float, float | None, float | None]:
            start = time.time()
            pushers = [asyncio.create_task(d.pusher(done)) for d in devices]

            async def edits(device: Device) -> None:
                guid = guids[device.number % shape.docs]
                for n in range(shape.edits):
                    device.edit(guid, n, made)
                    if shape.rate:
                        await asyncio.sleep(max(0.0, start + (n + 1) / shape.rate - time.time()))
                    elif n % 10 == 9:
                        await asyncio.sleep(0)

            await asyncio.gather(*(edits(d) for d in devices))
            made_at = time.time()
            done.set()
            for d in devices:
                d.wake.set()
            deadline = time.time() + timeout_s
            total = shape.clients * shape.edits
            while sum(len(d.acked) for d in devices) < total and time.time() < deadline:
                await asyncio.sleep(0.005)
            acked_at = time.time() if sum(len(d.acked) for d in devices) >= total else None
            peers = shape.clients // shape.docs - 1
            delivered_at = None
            if peers:
                while (any(len(seen.get(k, ())) < peers for k in made)
                       and time.time() < deadline):
                    await asyncio.sleep(0.005)
                if all(len(seen.get(k, ())) >= peers for k in made):
                    delivered_at = time.time()
            for task in pushers:
                task.cancel()
            return start, made_at, acked_at, delivered_at

        (start, made_at, acked_at, delivered_at), cpu = await sampling(server, drive())
        acked_ids = {uid for d in devices for uid in d.acked}
        refused = [r for d in devices for r in d.refused]
    finally:
        server.kill()
    for reader in readers:
        reader.cancel()
    peers = shape.clients // shape.docs - 1
    latencies = [(max(seen[k][:peers]) - t) * 1e3 for k, t in made.items()
                 if peers and len(seen.get(k, ())) >= peers]
    stored = await stored_update_ids(database_url, tenant)
    missing = len(acked_ids - stored - {r.update_id for r in refused})
    return Outcome("velocity hub", shape.name, len(made), made_at - start,
                   acked_at - start if acked_at else None,
                   delivered_at - start if delivered_at else None, latencies, missing,
                   len(acked_ids), cpu, server.peak_rss / 2**20,
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
                     f"{o.cpu_s:.1f} | {o.peak_rss_mb:.0f} | {o.note} |")
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
    database_url = os.environ.get("DATABASE_URL") or start_embedded_postgres(embedded)
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
                        outcome = asyncio.run(hub_run(shape, database_url, folder, args.timeout))
                    else:
                        outcome = asyncio.run(peer_run(system, shape, folder, node, pyvenv,
                                                       args.timeout))
                    outcomes.append(outcome)
                    if outcome.missing_after_kill:
                        console.print(f"[bold red]{system} lost {outcome.missing_after_kill} "
                                      f"acknowledged edits of {shape.name} after SIGKILL[/]")
                    progress.advance(task)
    finally:
        if not os.environ.get("DATABASE_URL"):
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
