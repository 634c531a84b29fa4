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
import cProfile
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from rich.console import Console
from rich.progress import Progress

from bench._common import create_database, drop_database, hub_in_process, percentile, write_results
from core.identity import Principal, Role
from core.ids import make_guid, new_id
from edge_agent.device import pair
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.policy import CANVAS
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from schema import collection
from sync.record import RecordDoc

CLIENT = Path(__file__).parent / "canvas_clients.mjs"
NPM_PACKAGES = ("yjs@13", "y-websocket@3", "ws@8")
MARKER = re.compile(r"[<(\[{!#$%&*+]([ye]\d+)\.(\d+)>")
OPENERS = "([{!#$%&*+"
"""An edge's markers start with one of two characters of its own, alternating: the edge writes
the whole new narrative and the engine inserts only what differs from the old one, so a marker
whose start matched the text's start would be inserted as a rotated piece after it."""
WINDOW = 100
"""Edits per CPU window (the first and the last ``WINDOW`` edits to reach the hub)."""
STRETCHES = (
    ("edit → visible on every other client (Yjs and edges)", "edit_to_visible_ms"),
    ("edit → visible on every other Yjs client", "edit_to_visible_on_yjs_ms"),
    ("edit → committed on the hub (its transaction's start)", "edit_to_commit_ms"),
    ("committed → visible on every other Yjs client", "commit_to_visible_on_yjs_ms"),
)
"""The latencies reported: the whole way, and split at the hub's commit."""
PASSPHRASE = "bench device passphrase"
"""Seals each bench device's keys (a throwaway folder)."""
QUICK = (4, 2, 40)
"""Yjs clients, edges and edits each of ``--quick``."""


def _hub_process(folder: Path, database_url: str | None, yjs: int, edges: int,
                 profile: Path | None, conn: Connection) -> None:
    with _profiled(profile):
        asyncio.run(_serve_hub(folder, database_url, yjs, edges, conn))


@contextlib.contextmanager
def _profiled(path: Path | None) -> Iterator[None]:
    """cProfile the block into ``path`` (nothing when None)."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)


async def _serve_hub(folder: Path, database_url: str | None, yjs: int, edges: int,
                     conn: Connection) -> None:
    """One tenant, a page every user may edit, a token per Yjs user, a pairing code per edge."""
    from core.auth import issue_token

    settings = HubSettings(data_dir=folder / "hub", database_url=database_url, port=0,
                           sandbox_workers=2)
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
        while await asyncio.to_thread(conn.recv) == "page":  # else: stop
            conn.send(await _hub_page(hub, tenant, page_id))


async def _hub_page(hub: Hub, tenant: str, page_id: str) -> tuple[str, dict[str, float]]:
    """The page's narrative as the hub holds it, and when each marker was committed (ms):
    the start of the transaction that logged the update inserting it."""
    guid = make_guid(CANVAS, page_id)
    doc = await hub.store.document(tenant, guid)
    assert doc is not None
    rows = await hub.db.pool.fetch(
        "SELECT data, created_at FROM hub_updates WHERE tenant_id = $1 AND guid = $2",
        tenant, guid)
    committed = {f"{m[1]}.{m[2]}": r["created_at"].timestamp() * 1000 for r in rows
                 for m in MARKER.finditer(bytes(r["data"]).decode("latin-1"))}
    return (RecordDoc(collection(CANVAS), page_id, state=doc.state).content()["narrative"],
            committed)


class CpuSampler:
    """The hub process's CPU seconds (with its sandbox workers), sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self._children: dict[int, psutil.Process] = {}
        self._last: dict[int, float] = {}
        """Each process's latest reading (a worker that ended keeps its last)."""
        self._listed = -math.inf
        self.samples: list[tuple[float, float]] = []

    def cpu(self) -> float:
        if time.monotonic() - self._listed > 1.0:  # listing walks /proc: once a second
            self._listed = time.monotonic()
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in self._proc.children(recursive=True):
                    self._children.setdefault(child.pid, child)
        for proc in (self._proc, *self._children.values()):
            with contextlib.suppress(psutil.NoSuchProcess):
                self._last[proc.pid] = sum(proc.cpu_times()[:2])
        return sum(self._last.values())

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
                       sent: dict[str, float], made: list[int]) -> None:
    import random

    page_id = guid.split("/")[1]
    await asyncio.sleep(random.random() * interval)
    for k in range(edits):
        key = f"e{j}.{k}"
        marker = f"{OPENERS[(2 * j + k % 2) % len(OPENERS)]}{key}>"
        sent[key] = time.time() * 1000
        await agent.write("canvas_pages", page_id,
                          lambda c, m=marker: {"narrative": m + c["narrative"]})
        made[0] += 1
        await asyncio.sleep(interval * (0.5 + random.random()))


async def _edge_watch(agent: EdgeAgent, guid: str, seen: dict[str, float]) -> None:
    """Note when each marker first shows in the edge's copy (read again only when it changed)."""
    held = b""
    while True:
        doc = agent.replica.document(guid)
        state_vector = doc.state_vector()
        if state_vector != held:
            at, held = time.time() * 1000, state_vector
            for m in MARKER.finditer(doc.content()["narrative"]):
                seen.setdefault(f"{m[1]}.{m[2]}", at)
        await asyncio.sleep(0.02)


class NodeClients:
    """The Node.js process of the Yjs clients: its "ready", progress and result lines."""

    def __init__(self, proc: asyncio.subprocess.Process, errors: Path) -> None:
        self.proc, self._errors = proc, errors
        self.ready = asyncio.Event()
        self.made = self.seen = 0
        self.result: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            await self._read_lines()
        except Exception as exc:  # the bench waits on `result`: it must hear of this
            if not self.result.done():
                self.result.set_exception(RuntimeError(f"reading the Yjs clients failed: {exc!r}"))
            self.ready.set()

    async def _read_lines(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if line.strip() == b"ready":
                self.ready.set()
                continue
            message = json.loads(line)
            if "progress" in message:
                self.made, self.seen = message["progress"]["sent"], message["progress"]["seen"]
            elif not self.result.done():
                self.result.set_result(message)
        if not self.result.done():
            await self.proc.wait()
            error = self._errors.read_text(errors="replace")[-2000:]
            self.result.set_exception(RuntimeError(f"the Yjs clients ended: {error}"))
            self.ready.set()

    async def tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self._reader.cancel()


def _markers(text: str) -> Counter[str]:
    return Counter(f"{m[1]}.{m[2]}" for m in MARKER.finditer(text))


async def run(yjs: int, edges: int, edits: int, interval: float, database_url: str | None,
              stall_s: float, timeout_s: float, profile: Path | None) -> dict[str, Any]:
    console = Console()
    with tempfile.TemporaryDirectory() as tmp, \
            hub_in_process(_hub_process, Path(tmp) / "hubdata", database_url, yjs, edges,
                           profile and profile / "hub.prof") as conn:
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
        total = len(expected) * edits
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({
            "server": ws_url, "page": info["page"], "tokens": info["tokens"], "edits": edits,
            "interval_ms": interval * 1000, "expected": expected}))
        node_errors = Path(tmp) / "node.err"
        with node_errors.open("wb") as errors:  # a pipe nobody reads would fill and stall it
            node = NodeClients(await asyncio.create_subprocess_exec(
                "node", str(script), str(config), cwd=script.parent, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=errors, limit=1 << 26), node_errors)
        agents = [EdgeAgent(s) for s in settings]
        sampler = CpuSampler(info["pid"])
        edge_sent: dict[str, float] = {}
        edge_made = [0]
        edge_seen: list[dict[str, float]] = [{} for _ in agents]
        background: list[asyncio.Task[None]] = []
        try:
            for agent in agents:
                await agent.__aenter__()
            for agent in agents:
                while guid not in {d.guid for d in agent.replica.documents()}:
                    await asyncio.sleep(0.05)
            await asyncio.wait_for(node.ready.wait(), 120)
            if node.result.done():
                node.result.result()  # raises: the clients ended before they were ready
            background = [asyncio.create_task(_edge_watch(a, guid, s))
                          for a, s in zip(agents, edge_seen, strict=True)]
            background.append(asyncio.create_task(sampler.run()))
            await asyncio.sleep(0.2)
            start = time.time() * 1000
            await node.tell("go")
            authors = asyncio.gather(*(
                _edge_author(a, j, guid, edits, interval, edge_sent, edge_made)
                for j, a in enumerate(agents)))
            sightings_goal = len(expected) * total
            with Progress(console=console) as progress:
                made_bar = progress.add_task("edits made (Yjs clients and edges)", total=total)
                seen_bar = progress.add_task("sightings (every client, every edit)",
                                             total=sightings_goal)
                deadline = time.monotonic() + timeout_s
                last_change, last_progress = time.monotonic(), (-1, -1)
                while True:
                    made = node.made + edge_made[0]
                    seen = node.seen + sum(len(s) for s in edge_seen)
                    progress.update(made_bar, completed=made)
                    progress.update(seen_bar, completed=seen)
                    if (made, seen) != last_progress:
                        last_change, last_progress = time.monotonic(), (made, seen)
                    if made == total and seen >= sightings_goal:
                        break
                    if (time.monotonic() - last_change > stall_s
                            or time.monotonic() > deadline):
                        console.print(f"[bold red]giving up: {total - made} edits not made, "
                                      f"{sightings_goal - seen} sightings missing")
                        break
                    if node.result.done():
                        node.result.result()  # raises: the clients ended early
                    await asyncio.sleep(0.25)
            authors.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await authors
            await asyncio.sleep(0.5)  # the last sightings' stragglers
            for t in background:
                t.cancel()
            refusals = [r for a in agents for r in await a.replica.refusals()]
            edge_texts = [a.replica.document(guid).content()["narrative"] for a in agents]
            while agents:  # first: a lagging edge's pull batches hold this event loop
                await agents.pop().__aexit__(None, None, None)
            await node.tell("report")
            result = await asyncio.wait_for(node.result, 300)
            conn.send("page")
            hub_text, committed = await asyncio.to_thread(conn.recv)
        finally:
            for t in background:
                t.cancel()
            for agent in agents:
                await agent.__aexit__(None, None, None)
            await node.close()
            conn.send("stop")
    return _figures(yjs, edges, edits, interval, start, result, edge_sent, edge_seen, sampler,
                    refusals, [*result["texts"], *edge_texts], hub_text, committed, expected)


def _spread(samples: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99),
            "max": max(samples)}


def _figures(yjs: int, edges: int, edits: int, interval: float, start: float,
             result: dict[str, Any], edge_sent: dict[str, float],
             edge_seen: list[dict[str, float]], sampler: CpuSampler,
             refusals: list[dict[str, Any]], texts: list[str], hub_text: str,
             committed: dict[str, float],
             expected: list[str]) -> dict[str, Any]:
    """The figures of one run: latencies of the edits every other client saw, the sightings
    that never came, the CPU windows and whether every copy of the page is the same."""
    sent = {**result["sent"], **edge_sent}
    visible: dict[str, float] = {}
    missing = 0
    for key in sent:
        author = key.split(".")[0]
        edge_times = [s.get(key) for j, s in enumerate(edge_seen) if author != f"e{j}"]
        missing += sum(t is None for t in edge_times) + result["unseen"].get(key, 0)
        at = result["visible"].get(key)
        if at is not None and None not in edge_times:
            visible[key] = max([at, *(t for t in edge_times if t is not None)])

    def earliest(key: str) -> float:
        """When the first other client saw the edit: about when the hub committed it."""
        author = key.split(".")[0]
        times = [result["first"].get(key)] + [s.get(key) for j, s in enumerate(edge_seen)
                                              if author != f"e{j}"]
        return min((t for t in times if t is not None), default=math.inf)

    first_seen = sorted(t for t in map(earliest, sent) if t != math.inf)
    latencies = [visible[k] - sent[k] for k in visible]
    on_yjs = [at - sent[k] for k, at in result["visible"].items() if at is not None and k in sent]
    to_commit = [committed[k] - sent[k] for k in sent if k in committed]
    commit_to_yjs = [at - committed[k] for k, at in result["visible"].items()
                     if at is not None and k in committed and k in sent]
    end = first_seen[-1]
    window = min(WINDOW, len(first_seen) // 2)
    windows = {"first": (start, first_seen[window - 1]), "last": (first_seen[-window - 1], end)}
    cpu_per_edit = {name: (sampler.at(b) - sampler.at(a)) / window * 1000
                    for name, (a, b) in windows.items()}
    wanted = Counter(dict.fromkeys(sent, 1))
    held = _markers(hub_text)
    return {
        "yjs_clients": yjs, "edges": edges, "edits_each": edits, "interval_s": interval,
        "edits": len(sent), "edits_not_made": len(expected) * edits - len(sent),
        "missing_sightings": missing, "cpu_window": window,
        "lost_edits": sorted(wanted - held), "duplicated_edits": sorted(held - wanted),
        "converged": all(t == hub_text for t in texts), "copies_compared": len(texts) + 1,
        "narrative_chars": len(hub_text),
        "yjs_disconnects": result["closes"], "edge_refusals": refusals,
        "edits_per_s": len(first_seen) / ((end - start) / 1000),
        "edit_to_visible_ms": _spread(latencies),
        "edit_to_visible_on_yjs_ms": _spread(on_yjs),
        "edit_to_commit_ms": _spread(to_commit),
        "commit_to_visible_on_yjs_ms": _spread(commit_to_yjs),
        "hub_cpu_ms_per_edit": cpu_per_edit,
        "cpu_growth": cpu_per_edit["last"] / cpu_per_edit["first"],
    }


def _git_head() -> str:
    """The commit measured (with the gate's history: ``git log`` of the repository)."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=Path(__file__).parent, check=False)
    return out.stdout.strip() or "unknown"




def _faults(figures: dict[str, Any]) -> list[str]:
    """What went wrong in a run (empty: every edit reached every copy of the page once)."""
    faults = []
    if figures["edits_not_made"]:
        faults.append(f"{figures['edits_not_made']} edits never made (the run gave up)")
    if figures["missing_sightings"]:
        faults.append(f"{figures['missing_sightings']} sightings never came")
    if figures["lost_edits"]:
        faults.append(f"{len(figures['lost_edits'])} edits made but NOT on the hub's page: "
                      f"{', '.join(figures['lost_edits'][:10])}")
    if figures["duplicated_edits"]:
        faults.append(f"{len(figures['duplicated_edits'])} edits duplicated on the hub's page")
    if not figures["converged"]:
        faults.append("the clients' and the hub's narratives DIFFER")
    if figures["yjs_disconnects"]:
        faults.append(f"{len(figures['yjs_disconnects'])} Yjs disconnects: "
                      f"{sorted(set(figures['yjs_disconnects']))}")
    if figures["edge_refusals"]:
        faults.append(f"{len(figures['edge_refusals'])} edge changes refused")
    return faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 Yjs clients + 2 edges, 40 edits each (overrides the counts)")
    parser.add_argument("--yjs", type=int, default=20, help="stock Yjs clients")
    parser.add_argument("--edges", type=int, default=5, help="Python edge agents")
    parser.add_argument("--edits", type=int, default=100, help="edits each")
    parser.add_argument("--interval", type=float, default=0.25,
                        help="seconds between one client's edits, on average")
    parser.add_argument("--stall", type=float, default=60.0,
                        help="give up after this many seconds without a new edit or sighting")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="give up after this many seconds of editing and waiting")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="write cProfile stats of the hub (hub.prof) and of this process "
                        "with its edges (bench.prof) into DIR")
    args = parser.parse_args()
    if args.quick:
        args.yjs, args.edges, args.edits = QUICK
    console = Console()
    load_before = os.getloadavg()[0]
    server_url = os.environ.get("DATABASE_URL")
    url = asyncio.run(create_database(server_url, "velocity_bench_canvas")) if server_url else None
    try:
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        with _profiled(args.profile and args.profile / "bench.prof"):
            figures = asyncio.run(run(args.yjs, args.edges, args.edits, args.interval, url,
                                      args.stall, args.timeout, args.profile))
    finally:
        if server_url and url:
            asyncio.run(drop_database(server_url, url))
    faults = _faults(figures)
    figures |= {"quick": args.quick, "git": _git_head(), "faults": faults,
                "load_average": {"before": load_before, "after": os.getloadavg()[0]}}
    lat, cpu = figures["edit_to_visible_ms"], figures["hub_cpu_ms_per_edit"]
    md = (
        f"# Canvas{' (quick mode)' if args.quick else ''}: {figures['yjs_clients']} stock "
        f"Yjs clients + {figures['edges']} edges on "
        f"one page, {figures['edits_each']} edits each (one per {figures['interval_s']} s "
        "on average)\n\n"
        "| edits | edits/s | edit → visible on every other client p50 / p99 / max | "
        f"hub CPU per edit, first {figures['cpu_window']} / last {figures['cpu_window']} | "
        "growth | missed sightings | lost edits |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {figures['edits']} | {figures['edits_per_s']:.0f} | {lat['p50']:.0f} / "
        f"{lat['p99']:.0f} / {lat['max']:.0f} ms | {cpu['first']:.2f} / {cpu['last']:.2f} ms "
        f"| {figures['cpu_growth']:.2f}× | {figures['missing_sightings']} | "
        f"{len(figures['lost_edits'])} |\n\n"
        "| stretch | p50 / p99 / max |\n| --- | --- |\n"
        + "".join(f"| {label} | {figures[key]['p50']:.0f} / {figures[key]['p99']:.0f} / "
                  f"{figures[key]['max']:.0f} ms |\n" for label, key in STRETCHES)
        + "\n"
        + (f"The {figures['copies_compared']} copies of the page (every Yjs client, every edge, "
           f"the hub) hold the same narrative ({figures['narrative_chars']:,} characters) with "
           "every edit once.\n\n" if not faults else
           "**FAULTS:** " + "; ".join(faults) + ".\n\n")
        + f"Machine load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} "
        f"after; code at {figures['git']}.\n")
    path = write_results("canvas", figures, md)
    console.print(md)
    console.print(f"written to {path}")
    if faults:
        console.print("[bold red]FAULTS: " + "; ".join(faults))
        sys.exit(1)


if __name__ == "__main__":
    main()
