"""Soak: many devices against one hub process for minutes, with faults; backlog drain rate.

Run: ``.venv/bin/python bench/soak.py [--devices 200] [--minutes 10] [--short]``.
``--short`` is 10 devices, 1 minute and a 4,000-update backlog (a quick look, not a soak).
Drain time counts from the first device connecting (each device's start, handshake and
catch-up included) until the last outbox is empty.

1. **Backlog drain.** Every device writes its share of ``--backlog`` updates offline, then all
   connect at once; timed until every outbox is empty, once with the adaptive push window and
   once with a window of one batch (stop-and-wait), side by side.
2. **Soak.** Every device writes at random intervals while devices drop off and come back
   (their agent stopped and restarted), the hub's log is compacted, and the hub process is
   killed (`kill -9`) and restarted once. Memory of the devices' process and of the hub's is
   sampled throughout.
3. **Convergence.** After the last fault, writing stops; timed until every outbox is empty,
   every record a device holds equals the hub's, and every device holds all of its user's
   records.

Writes bench/results/soak.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import psutil
from rich.console import Console
from rich.progress import Progress

from bench._common import write_results
from core.identity import Role
from edge_agent.device import IDENTITY_FILE, pair
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings

ROOT = Path(__file__).resolve().parents[1]
VELOCITY = [sys.executable, "-c", "from cli.main import app; app()"]
PASSWORD = "soak password 1234"
PASSPHRASE = "soak device passphrase"
console = Console()


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


async def pair_devices(url: str, folder: Path, devices: int, users: int) -> list[EdgeSettings]:
    """Brokers of tenant t1 and their devices, paired through a short-lived hub."""
    hub = Hub(HubSettings(database_url=url, sandbox_workers=1))
    out: list[EdgeSettings] = []
    async with HubServer(hub, host="127.0.0.1", port=0) as server:
        await hub.accounts.ensure_tenant("t1", "T1")
        await hub.accounts.create_user("t1", "admin@t1.test", PASSWORD, Role.ADMIN, "Admin",
                                       team_id="north", user_id="t1-admin")
        for u in range(users):
            await hub.accounts.create_user("t1", f"broker{u}@t1.test", PASSWORD,
                                           Role.SENIOR_BROKER, f"Broker {u}", team_id="north",
                                           user_id=f"t1-broker{u}")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            r = await http.post("/api/auth/login", json={"email": "admin@t1.test",
                                                         "password": PASSWORD})
            admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("pairing devices", total=devices)
                for d in range(devices):
                    r = await http.post("/api/devices/pairing-codes", headers=admin, json={
                        "user_id": f"t1-broker{d % users}", "device_kind": "ipad"})
                    r.raise_for_status()
                    await pair(folder / f"d{d}", server.url, r.json()["code"], f"d{d}",
                               PASSPHRASE)
                    out.append(EdgeSettings(data_dir=folder / f"d{d}", backoff_cap_s=5.0,
                                            passphrase=PASSPHRASE))
                    bar.advance(task)
    return out


class HubProcess:
    def __init__(self, url: str, port: int, log: Path) -> None:
        self.url, self.port, self.log = url, port, log
        self.proc: subprocess.Popen[bytes] | None = None

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
        if self.proc is None or self.proc.poll() is not None:
            return 0
        parent = psutil.Process(self.proc.pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])

    async def ready(self) -> None:
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)


def point_all(settings: list[EdgeSettings], port: int) -> None:
    import json

    for s in settings:
        path = s.data_dir / IDENTITY_FILE
        path.write_text(json.dumps({**json.loads(path.read_text()),
                                    "hub_url": f"http://127.0.0.1:{port}"}))


async def write_backlog(settings: list[EdgeSettings], per_device: int, rng: random.Random
                        ) -> None:
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("offline writes", total=len(settings) * per_device)
        for s in settings:
            async with EdgeAgent(s, sync=False) as agent:
                ids: list[str] = []
                for i in range(per_device):
                    if not ids or rng.random() < 0.3:
                        ids.append((await agent.write("people", None, {
                            "full_name": f"Visitor {i}", "notes": f"[{i}]"})).id)
                    else:
                        await agent.write("people", rng.choice(ids), {"city": f"City {i}"})
                    bar.advance(task)


async def pending(agents: list[EdgeAgent]) -> int:
    return sum([await a.replica.pending_count() for a in agents])


async def bootstrap(settings: list[EdgeSettings]) -> None:
    """Connect every device once until it has caught up (its first, full pull)."""
    agents = [EdgeAgent(s) for s in settings]
    for a in agents:
        await a.__aenter__()
    try:
        for a in agents:
            assert a.sync is not None
            await a.sync.caught_up.wait()
    finally:
        for a in agents:
            await a.__aexit__(None, None, None)


async def drain(settings: list[EdgeSettings], window: int, total: int) -> float:
    """Connect every device at once (each holding its share of ``total`` unsent updates);
    seconds until every outbox is empty."""
    start = time.monotonic()
    agents = [EdgeAgent(s.model_copy(update={"push_window": window})) for s in settings]
    for a in agents:
        await a.__aenter__()
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"drain (window {window})", total=total)
            while (left := await pending(agents)) > 0:
                bar.update(task, completed=total - left)
                await asyncio.sleep(0.2)
        return time.monotonic() - start
    finally:
        for a in agents:
            await a.__aexit__(None, None, None)


async def soak(settings: list[EdgeSettings], hub: HubProcess, url: str, minutes: float,
               rng: random.Random) -> dict[str, Any]:
    agents: dict[int, EdgeAgent] = {}
    for n, s in enumerate(settings):
        agents[n] = await EdgeAgent(s).__aenter__()
    me = psutil.Process()
    memory: list[tuple[float, int, int]] = []
    faults = {"device_restarts": 0, "compactions": 0, "hub_kills": 0}
    writes = 0
    start = time.monotonic()
    end = start + minutes * 60
    next_fault = start + 5
    hub_killed = False
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("soak", total=minutes * 60)
        while (now := time.monotonic()) < end:
            for n in rng.sample(sorted(agents), k=max(1, len(agents) // 10)):
                agent = agents[n]
                people = [d.record_id for d in agent.replica.documents()
                          if d.collection.name == "people"]
                if people and rng.random() < 0.7:
                    await agent.write("people", rng.choice(people), {"city": f"C{writes}"})
                else:
                    await agent.write("people", None, {"full_name": f"Walk-in {writes}"})
                writes += 1
            if now >= next_fault:
                next_fault = now + rng.uniform(3, 8)
                fault = rng.choice(["device", "device", "compact"])
                if not hub_killed and now > start + minutes * 30:
                    fault = "hub"
                if fault == "device":
                    for n in rng.sample(sorted(agents), k=max(1, len(agents) // 20)):
                        await agents[n].__aexit__(None, None, None)
                        agents[n] = await EdgeAgent(settings[n]).__aenter__()
                        faults["device_restarts"] += 1
                elif fault == "compact":
                    await compact(url)
                    faults["compactions"] += 1
                else:
                    hub.kill_9()
                    hub.start()
                    hub_killed = True
                    faults["hub_kills"] += 1
                memory.append((now - start, me.memory_info().rss, hub.rss()))
            bar.update(task, completed=now - start)
            await asyncio.sleep(0.2)
    last_fault = time.monotonic()
    conn = await asyncpg.connect(url)

    async def differing() -> int:
        """Records a device holds that differ from the hub, plus hub records of the device's
        own user it lacks (0 everywhere: converged)."""
        rows = await conn.fetch("SELECT id, owner_id, full_name, city FROM crm_people")
        hub_rows = {r["id"]: (r["full_name"], r["city"]) for r in rows}
        off = 0
        for agent in agents.values():
            held = {r["id"]: (r["full_name"], r["city"]) for r in await agent.replica.query(
                "SELECT id, full_name, city FROM temp.crm_people")}
            off += sum(1 for i, v in held.items() if hub_rows.get(i) != v)
            off += sum(1 for r in rows if r["owner_id"] == agent.pairing.user_id
                       and r["id"] not in held)
        return off

    while await pending(list(agents.values())) or await differing():
        await asyncio.sleep(0.5)
        if time.monotonic() - last_fault > 600:
            raise RuntimeError("did not converge within 10 minutes of the last fault")
    converge_s = time.monotonic() - last_fault
    mismatched = await differing()
    await conn.close()
    for agent in agents.values():
        await agent.__aexit__(None, None, None)
    return {"writes": writes, "faults": faults, "converge_s": converge_s,
            "mismatched_records": mismatched, "memory": memory}


async def compact(url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url,
           "VELOCITY_SANDBOX_WORKERS": "1"}
    proc = await asyncio.create_subprocess_exec(
        *VELOCITY, "hub", "compact", "t1", "--keep", "200", env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await proc.wait()


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    url, pg = await database()
    folder = Path(tempfile.mkdtemp(prefix="velocity-soak-"))
    hub = HubProcess(url, free_port(), folder / "hub.log")
    try:
        settings = await pair_devices(url, folder, args.devices, max(1, args.devices // 10))
        point_all(settings, hub.port)
        hub.start()
        await hub.ready()
        per_device = max(1, args.backlog // args.devices)
        n_window = n_single = per_device * len(settings)
        await bootstrap(settings)  # both drains below then start from devices that resume
        await write_backlog(settings, per_device, rng)
        s_window = await drain(settings, 8, n_window)
        await write_backlog(settings, per_device, rng)
        s_single = await drain(settings, 1, n_single)
        result = await soak(settings, hub, url, args.minutes, rng)
    finally:
        hub.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if pg is not None:
            pg.cleanup()
        else:  # a database of its own on a shared server: leave nothing behind
            conn = await asyncpg.connect(os.environ["DATABASE_URL"])
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            await conn.close()
    peak_devices = max((m[1] for m in result["memory"]), default=0)
    peak_hub = max((m[2] for m in result["memory"]), default=0)
    first = result["memory"][0] if result["memory"] else (0, 0, 0)
    figures = {
        "devices": args.devices, "minutes": args.minutes, "seed": args.seed,
        "backlog_updates": n_window,
        "drain_updates_per_s": n_window / s_window,
        "drain_stop_and_wait_updates_per_s": n_single / s_single,
        "soak_writes": result["writes"], "faults": result["faults"],
        "converge_after_last_fault_s": result["converge_s"],
        "mismatched_records": result["mismatched_records"],
        "devices_rss_first_peak_mib": [first[1] / 2**20, peak_devices / 2**20],
        "hub_rss_first_peak_mib": [first[2] / 2**20, peak_hub / 2**20],
    }
    md = f"""# Soak: {args.devices} devices, {args.minutes:g} min

| figure | value |
| --- | --- |
| backlog drained (all devices connect at once) | {n_window:,} updates |
| drain time, adaptive window / one batch at a time | {s_window:.1f} s / {s_single:.1f} s |
| drain rate, adaptive push window | {n_window / s_window:,.0f} updates/s |
| drain rate, one batch at a time | {n_single / s_single:,.0f} updates/s |
| ratio | {(n_window / s_window) / (n_single / s_single):.2f}× |
| writes during the soak | {result['writes']:,} |
| faults | {result['faults']} |
| converged after the last fault | {result['converge_s']:.1f} s |
| records differing from the hub after convergence (all devices) | {result['mismatched_records']} |
| devices' process memory, first → peak | {first[1] / 2**20:.0f} → {peak_devices / 2**20:.0f} MiB |
| hub process memory, first → peak | {first[2] / 2**20:.0f} → {peak_hub / 2**20:.0f} MiB |
"""
    path = write_results("soak", figures, md)
    console.print(md)
    console.print(f"written to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--short", action="store_true",
                        help="10 devices, 1 minute, a 4,000-update backlog")
    arguments = parser.parse_args()
    if arguments.short:
        arguments.devices, arguments.minutes, arguments.backlog = 10, 1.0, 4_000
    asyncio.run(main(arguments))
