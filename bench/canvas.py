"""Benchmark of many hands on one canvas page: stock Yjs clients and Python edges at once.

Run: ``.venv/bin/python bench/canvas.py [--quick] [--yjs 20] [--edges 5] [--edits 100]
[--interval 0.25]``; ``--quick``: 4 Yjs clients and 2 edges, 40 edits each (240 edits, so the
CPU windows are still the first and the last 100).

The hub runs in its own process (as in production) on PostgreSQL (``DATABASE_URL`` or a private
one from `pgserver`). ``--yjs`` stock Yjs clients (the npm packages yjs, y-websocket and ws,
installed with npm into a temporary folder; all in one Node.js process) and ``--edges`` edge
agents (SQLite replicas, the sync protocol) edit one page's narrative at once, each making
``--edits`` edits, one every ``--interval`` seconds on average. Each edit inserts a marker;
every client notes when it first sees each marker, so an edit's edit → visible time is the
time until the last other client (Yjs or edge) saw it. The hub's CPU (its process and its
sandbox workers) is sampled throughout; CPU per edit is compared for the first and the last 100
edits to reach the hub (must not grow with the page's history). Writes bench/results/canvas.*.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from rich.console import Console
from rich.progress import Progress

from bench._common import hub_in_process, percentile, write_results
from core.identity import Principal, Role
from core.ids import new_id
from edge_agent.device import pair
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings

CLIENT = Path(__file__).parent / "canvas_clients.mjs"
NPM_PACKAGES = ("yjs@13", "y-websocket@3", "ws@8")
MARKER = re.compile(r"[<(\[{!#$%&*+]([ye]\d+)\.(\d+)>")
OPENERS = "([{!#$%&*+"
"""An edge's markers start with one of two characters of its own, alternating: the edge writes
the whole new narrative and the engine inserts only what differs from the old one, so a marker
whose start matched the text's start would be inserted as a rotated piece after it."""
WINDOW = 100
PASSPHRASE = "bench device passphrase"
"""Seals each bench device's keys (a throwaway folder)."""
QUICK = (4, 2, 40)
"""Yjs clients, edges and edits each of ``--quick``."""
"""Edits per CPU window (the first and the last ``WINDOW`` edits to reach the hub)."""


def _hub_process(folder: Path, yjs: int, edges: int, conn: Connection) -> None:
    asyncio.run(_serve_hub(folder, yjs, edges, conn))


async def _serve_hub(folder: Path, yjs: int, edges: int, conn: Connection) -> None:
    """One tenant, a page every user may edit, a token per Yjs user, a pairing code per edge."""
    import os

    from core.auth import issue_token

    settings = HubSettings(data_dir=folder / "hub", port=0, sandbox_workers=2)
    tenant = f"bench-{new_id()}"
    async with HubServer(Hub(settings)) as server:
        hub = server.hub
        await hub.accounts.ensure_tenant(tenant, "Bench Realty")
        owner = Principal(tenant, f"{tenant}-owner", Role.ADMIN)
        await hub.accounts.create_user(tenant, "owner@bench.test", "bench-password", Role.ADMIN,
                                       "Owner", user_id=owner.user_id)
        users = [f"{tenant}-u{i}" for i in range(yjs + edges)]
        for user_id in users:
            await hub.accounts.create_user(tenant, f"{user_id}@bench.test", "bench-password",
                                           Role.SENIOR_BROKER, user_id, team_id="t",
                                           user_id=user_id)
        page_id = new_id()
        await hub.writer.write(owner, "canvas_pages", page_id, {
            "tenant_id": tenant, "owner_id": owner.user_id, "title": "Sales meeting",
            "editors": users}, create=True)
        tokens = [issue_token(Principal(tenant, u, Role.SENIOR_BROKER, "t"), hub.secret_key,
                              3600, 0) for u in users[:yjs]]
        codes = [await hub.accounts.issue_pairing_code(owner, u, "ipad", 600)
                 for u in users[yjs:]]
        conn.send({"url": server.url, "page": page_id, "tokens": tokens, "codes": codes,
                   "pid": os.getpid()})
        await asyncio.to_thread(conn.recv)  # stop


class CpuSampler:
    """The hub process's CPU seconds (with its sandbox workers), sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []

    def cpu(self) -> float:
        try:
            total = sum(self._proc.cpu_times()[:2])
        except psutil.NoSuchProcess:  # the hub stopped: its last reading stands
            return self.samples[-1][1] if self.samples else 0.0
        for child in self._proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(child.cpu_times()[:2])
        return total

    async def run(self) -> None:
        while True:
            self.samples.append((time.time() * 1000, self.cpu()))
            await asyncio.sleep(0.05)

    def at(self, t_ms: float) -> float:
        """CPU seconds at ``t_ms`` (linear between samples)."""
        before = [s for s in self.samples if s[0] <= t_ms] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= t_ms] or self.samples[-1:]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (t_ms - t0) / (t1 - t0)


def _install_client(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "canvas-bench", "type": "module"}')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", *NPM_PACKAGES],
                   cwd=folder, check=True, timeout=300)
    script = folder / CLIENT.name
    script.write_text(CLIENT.read_text())
    return script


async def _edge_author(agent: EdgeAgent, j: int, guid: str, edits: int, interval: float,
                       sent: dict[str, float], progress: Progress, task: object) -> None:
    import random

    page_id = guid.split("/")[1]
    await asyncio.sleep(random.random() * interval)
    for k in range(edits):
        key = f"e{j}.{k}"
        marker = f"{OPENERS[(2 * j + k % 2) % len(OPENERS)]}{key}>"
        sent[key] = time.time() * 1000
        await agent.write("canvas_pages", page_id,
                          lambda c, m=marker: {"narrative": m + c["narrative"]})
        progress.advance(task)  # type: ignore[arg-type]
        await asyncio.sleep(interval * (0.5 + random.random()))


async def _edge_watch(agent: EdgeAgent, guid: str, seen: dict[str, float]) -> None:
    while True:
        at = time.time() * 1000
        doc = agent.replica.document(guid)
        for m in MARKER.finditer(doc.content()["narrative"]):
            seen.setdefault(f"{m[1]}.{m[2]}", at)
        await asyncio.sleep(0.02)


async def run(yjs: int, edges: int, edits: int, interval: float) -> dict[str, object]:
    console = Console()
    with tempfile.TemporaryDirectory() as tmp, \
            hub_in_process(_hub_process, Path(tmp) / "hubdata", yjs, edges) as conn:
        console.print("installing yjs, y-websocket and ws with npm …")
        script = await asyncio.to_thread(_install_client, Path(tmp) / "node")
        if not await asyncio.to_thread(conn.poll, 300):
            raise RuntimeError("the hub did not start within 300 s (see its output above)")
        info = conn.recv()
        guid = f"canvas_pages/{info['page']}"
        settings = []
        for n, code in enumerate(info["codes"]):
            folder = Path(tmp) / f"edge{n}"
            await pair(folder, info["url"], code, folder.name, passphrase=PASSPHRASE)
            settings.append(EdgeSettings(data_dir=folder, backoff_cap_s=1.0,
                                         passphrase=PASSPHRASE))  # type: ignore[arg-type]
        ws_url = info["url"].replace("http", "ws") + "/api/oracle/v1/ws/oracle/canvas"
        expected = [f"y{i}" for i in range(yjs)] + [f"e{j}" for j in range(edges)]
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({
            "server": ws_url, "page": info["page"], "tokens": info["tokens"], "edits": edits,
            "interval_ms": interval * 1000, "timeout_ms": 120_000, "expected": expected}))
        node = await asyncio.create_subprocess_exec(
            "node", str(script), str(config), cwd=script.parent, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, limit=1 << 26)
        agents = [EdgeAgent(s) for s in settings]
        sampler = CpuSampler(info["pid"])
        edge_sent: dict[str, float] = {}
        edge_seen: list[dict[str, float]] = [{} for _ in agents]
        watchers: list[asyncio.Task[None]] = []
        cpu_task = asyncio.create_task(asyncio.sleep(0))
        try:
            for agent in agents:
                await agent.__aenter__()
            for agent in agents:
                while guid not in {d.guid for d in agent.replica.documents()}:
                    await asyncio.sleep(0.05)
            assert node.stdout is not None and node.stdin is not None
            ready = await asyncio.wait_for(node.stdout.readline(), 120)
            if ready.strip() != b"ready":
                raise RuntimeError(f"Yjs clients did not start: {ready!r}")
            watchers = [asyncio.create_task(_edge_watch(a, guid, s))
                        for a, s in zip(agents, edge_seen, strict=True)]
            cpu_task = asyncio.create_task(sampler.run())
            await asyncio.sleep(0.2)
            start = time.time() * 1000
            node.stdin.write(b"go\n")
            await node.stdin.drain()
            with Progress(console=console) as progress:
                task = progress.add_task("edges' edits (Yjs clients edit alongside)",
                                         total=edges * edits)
                await asyncio.gather(*(
                    _edge_author(a, j, guid, edits, interval, edge_sent, progress, task)
                    for j, a in enumerate(agents)))
            console.print("waiting for every client to see every edit …")
            line = await asyncio.wait_for(node.stdout.readline(), 180)
            result = json.loads(line)
            deadline = time.monotonic() + 60
            total = len(expected) * edits
            while any(len(s) < total for s in edge_seen) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.2)
            for t in (*watchers, cpu_task):
                t.cancel()
            refusals = [r for a in agents for r in await a.replica.refusals()]
        finally:
            for t in (*watchers, cpu_task):
                t.cancel()
            for agent in agents:
                await agent.__aexit__(None, None, None)
            if node.returncode is None:
                node.kill()
            await node.wait()
            conn.send("stop")
    sent = {**result["sent"], **edge_sent}
    visible: dict[str, float] = {}
    missing = result["missing"]
    for key, at in result["visible"].items():
        prefix = key.split(".")[0]
        edge_times = [s.get(key) for j, s in enumerate(edge_seen) if prefix != f"e{j}"]
        missing += sum(t is None for t in edge_times)
        visible[key] = max([at, *(t for t in edge_times if t is not None)])
    def earliest(key: str) -> float:
        """When the first other client saw the edit: about when the hub committed it."""
        author = key.split(".")[0]
        times = [result["first"].get(key)] + [s.get(key) for j, s in enumerate(edge_seen)
                                              if author != f"e{j}"]
        return min((t for t in times if t is not None), default=visible[key])

    first_seen = sorted(earliest(k) for k in sent)
    latencies = [visible[k] - sent[k] for k in sent]
    end = first_seen[-1]
    window = min(WINDOW, len(first_seen) // 2)
    windows = {
        "first": (start, first_seen[window - 1]),
        "last": (first_seen[-window - 1], end),
    }
    cpu_per_edit = {name: (sampler.at(b) - sampler.at(a)) / window * 1000
                    for name, (a, b) in windows.items()}
    return {
        "yjs_clients": yjs, "edges": edges, "edits_each": edits, "interval_s": interval,
        "edits": len(sent), "missing_sightings": missing, "cpu_window": window,
        "yjs_disconnects": result["closes"], "edge_refusals": refusals,
        "edits_per_s": len(sent) / ((end - start) / 1000),
        "edit_to_visible_ms": {"p50": percentile(latencies, 0.5),
                               "p99": percentile(latencies, 0.99),
                               "max": max(latencies)},
        "hub_cpu_ms_per_edit": cpu_per_edit,
        "cpu_growth": cpu_per_edit["last"] / cpu_per_edit["first"],
    }


def _git_head() -> str:
    """The commit measured (with the gate's history: ``git log`` of the repository)."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=Path(__file__).parent, check=False)
    return out.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 Yjs clients + 2 edges, 40 edits each (overrides the counts)")
    parser.add_argument("--yjs", type=int, default=20)
    parser.add_argument("--edges", type=int, default=5)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.25)
    args = parser.parse_args()
    if args.quick:
        args.yjs, args.edges, args.edits = QUICK
    load_before = os.getloadavg()[0]
    figures = asyncio.run(run(args.yjs, args.edges, args.edits, args.interval))
    figures |= {"quick": args.quick, "git": _git_head(),
                "load_average": {"before": load_before, "after": os.getloadavg()[0]}}
    lat = figures["edit_to_visible_ms"]
    cpu = figures["hub_cpu_ms_per_edit"]
    assert isinstance(lat, dict) and isinstance(cpu, dict)
    md = (
        f"# Canvas{' (quick mode)' if args.quick else ''}: {figures['yjs_clients']} stock "
        f"Yjs clients + {figures['edges']} edges on "
        f"one page, {figures['edits_each']} edits each (one per {figures['interval_s']} s "
        "on average)\n\n"
        "| edits | edits/s | edit → visible on every other client p50 / p99 / max | "
        f"hub CPU per edit, first {figures['cpu_window']} / last {figures['cpu_window']} | "
        "growth | missed sightings |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        f"| {figures['edits']} | {figures['edits_per_s']:.0f} | {lat['p50']:.0f} / "
        f"{lat['p99']:.0f} / {lat['max']:.0f} ms | {cpu['first']:.2f} / {cpu['last']:.2f} ms "
        f"| {figures['cpu_growth']:.2f}× | {figures['missing_sightings']} |\n\n"
        f"Machine load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} "
        f"after; code at {figures['git']}.\n")
    path = write_results("canvas", figures, md)
    Console().print(md)
    Console().print(f"written to {path}")


if __name__ == "__main__":
    main()
