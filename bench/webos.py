"""Benchmark of the WebOS: how long each page takes the hub to render with a seeded CRM.

Loads the ``medium`` seed (10,000 people) into a hub on PostgreSQL (a database of its own on
the ``DATABASE_URL`` server, dropped at the end, or a private one from `pgserver`), signs in as
the sales director (the whole tenant in scope) and as a broker, and requests every main page several
times over loopback HTTP; the figure is the request's wall time (server-side rendering plus a
loopback round trip), median and worst of the repeats. Target: < 300 ms per page.
Run: ``.venv/bin/python bench/webos.py [--size medium] [--repeats 5]`` (``--quick``: the small
seed, 3 repeats). Writes bench/results/webos.*. ``--screenshots docs/screenshots`` also saves
each page as the director sees it, at 1440 px and 1024 px (Debian's Chromium, headless).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bench._common import database_of_its_own, write_results
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from seeds.generator import Dataset, generate
from seeds.loader import DEMO_PASSWORD, load

TARGET_MS = 300
PAGES = ("/dashboard", "/crm/contacts", "/crm/contacts?q=mehta&page=2", "/crm/clients/{client}",
         "/crm/kanban", "/sentinel", "/admin/devices", "/admin/users", "/admin/audit",
         "/admin/gpu")
BROKER_PAGES = ("/dashboard", "/crm/contacts", "/crm/clients/{client}", "/crm/kanban",
                "/sentinel")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SHOT_WIDTHS = (1440, 1024)


async def run(size: str, repeats: int, console: Console, shots: Path | None
              ) -> dict[str, dict[str, float]]:
    data = generate("bench", size)
    folder = Path(tempfile.mkdtemp(prefix="velocity-webos-bench-"))
    try:
        async with database_of_its_own("velocity_bench_webos", folder / "pg") as url:
            settings = HubSettings(data_dir=folder, sandbox_workers=1, database_url=url)
            return await _load_and_measure(settings, data, size, repeats, console, shots)
    finally:  # the data go with the benchmark
        shutil.rmtree(folder, ignore_errors=True)


async def _load_and_measure(settings: HubSettings, data: Dataset, size: str, repeats: int,
                            console: Console, shots: Path | None
                            ) -> dict[str, dict[str, float]]:
    async with HubServer(Hub(settings), host="127.0.0.1", port=0) as server:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:
            task = bar.add_task(f"loading the {size} seed", total=len(data.records))
            await load(server.hub, data, progress=lambda n: bar.advance(task, n))
            plan = _plan(data)
            task = bar.add_task("rendering pages", total=len(plan) * repeats)
            figures = await _measure(server, data, plan, repeats, lambda: bar.advance(task))
            if shots is not None:
                task = bar.add_task("screenshots", total=len(PAGES) * len(SHOT_WIDTHS))
                await _screenshots(server, data, plan[0][0], shots, lambda: bar.advance(task))
            return figures


def _plan(data: Dataset) -> list[tuple[str, str]]:
    """(who, page) pairs: every main page as the director, the broker's own pages as a broker."""
    director = next(u.email for u in data.users if u.role.value == "SALES_DIRECTOR")
    broker = next(u.email for u in data.users if u.role.value == "JUNIOR_BROKER")
    return [(director, p) for p in PAGES] + [(broker, p) for p in BROKER_PAGES]


async def _signed_in(server: HubServer, email: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=server.url, timeout=60)
    page = await http.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    r = await http.post("/login", data={"email": email, "password": DEMO_PASSWORD,
                                        "nonce": nonce.group(1)})
    if r.headers.get("location") != "/dashboard":
        raise SystemExit(f"could not sign in as {email}: {r.status_code} {r.text[:200]}")
    return http


async def _measure(server: HubServer, data: Dataset, plan: list[tuple[str, str]],
                   repeats: int, tick: object) -> dict[str, dict[str, float]]:
    clients = {email: await _signed_in(server, email) for email in {e for e, _ in plan}}
    client = await _a_client(server, data)
    out: dict[str, dict[str, float]] = {}
    try:
        for email, page in plan:
            http, path = clients[email], page.format(client=client)
            await http.get(path)  # warm: templates compiled, statements prepared
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                r = await http.get(path)
                samples.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200, (path, r.status_code)
                tick()  # type: ignore[operator]
            who = "director" if "director" in email else "broker"
            out[f"{who} {page}"] = {"median_ms": statistics.median(samples),
                                    "max_ms": max(samples)}
    finally:
        for http in clients.values():
            await http.aclose()
    return out


async def _screenshots(server: HubServer, data: Dataset, email: str, folder: Path,
                       tick: object) -> None:
    """Each main page as ``email`` sees it, full length, at every width of `SHOT_WIDTHS`."""
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        raise SystemExit("screenshots need Debian's Chromium: apt-get install -y chromium")
    folder.mkdir(parents=True, exist_ok=True)
    client = await _a_client(server, data)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": SHOT_WIDTHS[0], "height": 900})
            await page.goto(f"{server.url}/login")
            await page.get_by_label("Email").fill(email)
            await page.get_by_label("Password").fill(DEMO_PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url("**/dashboard")
            for width in SHOT_WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                for path in PAGES:
                    if "?" in path:
                        continue
                    await page.goto(server.url + path.format(client=client))
                    name = path.strip("/").replace("/", "-").replace("-{client}", "")
                    await page.screenshot(path=str(folder / f"{name}-{width}.png"),
                                          full_page=True)
                    tick()  # type: ignore[operator]
        finally:
            await browser.close()


async def _a_client(server: HubServer, data: Dataset) -> str:
    """A broker's client with the most QD scores (a full client 360)."""
    client: str = await server.hub.db.pool.fetchval(
        "SELECT p.id FROM crm_people p JOIN intel_qd_scores q ON q.person_id = p.id "
        "WHERE p.tenant_id = $1 AND p.owner_id = $2 GROUP BY p.id ORDER BY count(*) DESC, p.id "
        "LIMIT 1", data.tenant_id,
        next(u.user_id for u in data.users if u.role.value == "JUNIOR_BROKER"))
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="the small seed, 3 repeats")
    parser.add_argument("--screenshots", type=Path, default=None, metavar="DIR",
                        help="also save a screenshot of every page into DIR")
    args = parser.parse_args()
    size, repeats = ("small", 3) if args.quick else (args.size, args.repeats)
    console = Console()
    pages = asyncio.run(run(size, repeats, console, args.screenshots))
    worst = max(v["median_ms"] for v in pages.values())
    rows = [f"| {name} | {v['median_ms']:.0f} | {v['max_ms']:.0f} |"
            for name, v in pages.items()]
    md = "\n".join([
        f"WebOS pages with the `{size}` seed ({repeats} requests each, loopback HTTP):", "",
        "| who · page | median ms | max ms |", "| --- | --- | --- |", *rows, "",
        f"Slowest page median: {worst:.0f} ms (target < {TARGET_MS} ms): "
        + ("met." if worst < TARGET_MS else "NOT met."),
    ])
    console.print(md)
    figures = {"size": size, "repeats": repeats, "target_ms": TARGET_MS, "pages": pages}
    console.print(f"written to {write_results('webos', figures, md)}")


if __name__ == "__main__":
    main()
