"""`velocity demo`: a hub, a seeded CRM, two devices, an offline conflict, proven convergence."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ConfigError
from core.identity import Role
from core.ids import split_guid
from edge_agent.device import pair
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.database import stop_embedded_postgres
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from schema import collection
from schema.inventory import HOLDS, SELLABLE, is_active, place_values
from seeds.generator import generate
from seeds.loader import DEMO_PASSWORD, load
from sync.record import RecordDoc

TENANT = "acme"
DEMO_PASSPHRASE = "demo device passphrase"
"""Seals the demo devices' keys (a real device's comes from its operator)."""


async def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: {what} did not happen within {timeout:.0f}s")
        await asyncio.sleep(0.05)


async def _hub_content(hub: Hub, guid: str) -> dict[str, object]:
    doc = await hub.storage.sync.document(TENANT, guid)
    coll, rid = split_guid(guid)
    return RecordDoc(collection(coll), rid, state=doc.state if doc else None).content()


async def run_demo(console: Console, *, serve: bool, people: int, port: int,
                   data_dir: Path | None) -> bool:
    """Run the demo; returns True when all three replicas converged. The embedded PostgreSQL
    it started is stopped when it ends (its data stays in the demo's folder)."""
    work = Path(tempfile.mkdtemp(prefix="velocity-demo-"))
    settings = HubSettings(data_dir=data_dir or work / "hub", port=port, sandbox_workers=2)
    try:
        return await _run(console, settings, work, serve=serve, people=people)
    finally:
        if not settings.database_url:
            stop_embedded_postgres(settings.data_dir / "pg")


async def _run(console: Console, settings: HubSettings, work: Path, *, serve: bool,
               people: int) -> bool:
    async with HubServer(Hub(settings)) as server:
        hub = server.hub
        console.rule("[bold]Velocity Edge demo")
        console.print(f"hub on {server.url} (PostgreSQL: "
                      f"{'DATABASE_URL' if settings.database_url else 'embedded'})")
        data = generate(TENANT, people=people)
        t0 = time.monotonic()
        with Progress(TextColumn("seeding CRM"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("seed", total=len(data.records))
            added = await load(hub, data, progress=lambda n: bar.advance(task, n))
        console.print(f"seeded {added} new records ({len(data.records)} in the dataset) in "
                      f"{time.monotonic() - t0:.1f}s")

        director = next(u for u in data.users if u.role is Role.SALES_DIRECTOR)
        broker = next(u for u in data.users if u.role is Role.SENIOR_BROKER)
        admin = (await hub.accounts.login(f"admin@{TENANT}.example", DEMO_PASSWORD)).principal
        dirs = {"ipad": work / "ipad", "kiosk": work / "kiosk"}
        for kind, user in (("ipad", broker), ("kiosk", director)):
            code = await hub.accounts.issue_pairing_code(admin, user.user_id, kind, 600)
            await pair(dirs[kind], server.url, code, f"demo {kind}", DEMO_PASSPHRASE)
        console.print(f"paired a broker's iPad ({broker.full_name}) and a showroom kiosk "
                      f"({director.full_name})")

        ipad_settings = EdgeSettings(data_dir=dirs["ipad"], passphrase=DEMO_PASSPHRASE)
        kiosk_settings = EdgeSettings(data_dir=dirs["kiosk"], passphrase=DEMO_PASSPHRASE)
        async with EdgeAgent(ipad_settings) as ipad, EdgeAgent(kiosk_settings) as kiosk:
            t0 = time.monotonic()
            assert ipad.sync is not None and kiosk.sync is not None
            await asyncio.wait_for(ipad.sync.caught_up.wait(), 120)
            await asyncio.wait_for(kiosk.sync.caught_up.wait(), 120)
            console.print(f"bootstrap: iPad {ipad.replica.document_count} records, kiosk "
                          f"{kiosk.replica.document_count} records in "
                          f"{time.monotonic() - t0:.1f}s")
            person = next(r for c, r, v in data.records
                          if c == "people" and v.get("owner_id") == broker.user_id)
            guid = f"people/{person}"

        # The iPad goes offline at a site visit; the kiosk stays online.
        async with EdgeAgent(ipad_settings, sync=False) as ipad_offline:
            await ipad_offline.write("people", person, {
                "city": "Dubai", "notes": "Met at the site: wants a sea view. "
                + ipad_offline.replica.record("people", person).notes})
            new_lead = await ipad_offline.write("leads", None, {
                "person_id": person, "stage": "SITE_VISIT", "notes": "Walked the show flat."})
            unit = await _free_unit(ipad_offline)
            if unit is not None:
                await ipad_offline.write(HOLDS, unit["id"], {
                    "tenant_id": TENANT, **place_values(unit, None, broker.user_id, None,
                                                        person_id=person,
                                                        note="Held at the site visit")})
            console.print("iPad [yellow]offline[/]: changed city to Dubai, added a note and a "
                          "new lead" + (f", held unit {unit['unit_no']}" if unit else ""))
        async with EdgeAgent(kiosk_settings) as kiosk:
            assert kiosk.sync is not None
            qd = await _sentinel_visit(kiosk, person, work)
            await kiosk.write("people", person, {"city": "London", "segment": "whale",
                                                 "notes": kiosk.replica.record(
                                                     "people", person).notes
                                                 + f" QD {qd} today."})
            await _wait(lambda: _empty_outbox(kiosk), 30, "kiosk push")
            console.print(f"kiosk [green]online[/]: Sentinel scored the visitor QD {qd} (with "
                          "consent, frames never left memory); changed city to London, segment "
                          "to whale, appended the QD to the notes")

            t0 = time.monotonic()
            async with EdgeAgent(ipad_settings) as ipad:
                console.print("iPad back [green]online[/]: syncing…")
                await _wait(lambda: _empty_outbox(ipad), 60, "iPad push")
                await _wait(lambda: _has(kiosk, f"leads/{new_lead.id}"), 60, "kiosk receives")
                assert ipad.sync is not None
                await asyncio.wait_for(ipad.sync.caught_up.wait(), 60)
                await _wait(lambda: _same(ipad, kiosk, guid), 60, "convergence")
                elapsed = time.monotonic() - t0
                views = {
                    "iPad": ipad.replica.document(guid).content(),
                    "kiosk": kiosk.replica.document(guid).content(),
                    "hub": await _hub_content(hub, guid),
                }
                table = Table(title=f"{guid} after reconnecting")
                table.add_column("replica")
                for name in ("full_name", "city", "segment", "notes"):
                    table.add_column(name)
                for name, content in views.items():
                    table.add_row(name, *(str(content.get(f, "")) for f in
                                          ("full_name", "city", "segment", "notes")))
                console.print(table)
                mismatched = await _compare_all(hub, ipad, kiosk)
                ipad_qd = await ipad.replica.query(
                    "SELECT score FROM temp.intel_qd_scores WHERE person_id = ? AND NOT "
                    "deleted", (person,))
                console.print(f"the iPad sees the kiosk's QD: {[r['score'] for r in ipad_qd]}")
                if unit is not None:
                    held = await _hub_content(hub, f"{HOLDS}/{unit['id']}")
                    console.print(f"the hub holds unit {unit['unit_no']} for "
                                  f"{held.get('holder_id')} (placed offline)")
                converged = (views["iPad"] == views["kiosk"] == views["hub"] and not mismatched
                             and qd in [r["score"] for r in ipad_qd])
                synced = ipad.replica.document_count + kiosk.replica.document_count
                console.print(
                    f"{'[green]CONVERGED' if converged else '[red]DIVERGED'}[/]: {synced} records "
                    f"on two devices identical to the hub ({len(mismatched)} mismatches); "
                    f"catch-up took {elapsed:.2f}s; conflicts resolved: city (Dubai vs London) "
                    "by Yjs last-writer order, notes merged from both sides")
        if serve and converged:
            console.rule("hub running — Ctrl-C to stop")
            console.print(f"API docs: {server.url}/docs")
            console.print(f"logins (password {DEMO_PASSWORD!r}): admin@{TENANT}.example, "
                          f"director@{TENANT}.example, broker0@{TENANT}.example")
            await server.serve_forever()
        return converged


async def _sentinel_visit(kiosk: EdgeAgent, person: str, work: Path) -> int:
    """A consenting visitor watches a property video at the kiosk: a recorded session made
    from a real face photo stands in for the camera."""
    from edge_agent.sentinel import SceneSpan, SessionStart
    from perception.samples import record_scenario

    if kiosk.sentinel is None:
        raise ConfigError("the demo kiosk runs Sentinel: install the kiosk extra")
    recording = record_scenario(work / "showroom-visit.avi")
    started = await kiosk.sentinel.start(SessionStart(
        consent_reference="demo-consent-form", person_id=person, asset_id="palm-villa-tour",
        scene_map=[SceneSpan(start_s=0, end_s=6, label="living room"),
                   SceneSpan(start_s=6, end_s=12, label="sea-view deck")],
        recording=recording))
    outcome = await kiosk.sentinel.complete(started["session_id"], at_end=True)
    return int(outcome["qd"])


async def _free_unit(agent: EdgeAgent) -> dict[str, object] | None:
    """An available unit no one holds, as this device sees the inventory."""
    for unit in await agent.replica.query(
            "SELECT * FROM temp.inventory_units WHERE status = ? AND NOT deleted ORDER BY id",
            (SELLABLE,)):
        held = await agent.replica.query(
            "SELECT * FROM temp.inventory_unit_holds WHERE id = ?", (unit["id"],))
        if not held or not is_active(held[0]):
            return dict(unit)
    return None


async def _empty_outbox(agent: EdgeAgent) -> bool:
    return await agent.replica.pending_count() == 0


async def _has(agent: EdgeAgent, guid: str) -> bool:
    return not agent.replica.document(guid).is_empty


async def _same(a: EdgeAgent, b: EdgeAgent, guid: str) -> bool:
    return a.replica.document(guid).content() == b.replica.document(guid).content()


async def _compare_all(hub: Hub, *agents: EdgeAgent) -> list[str]:
    """Every document each device holds must equal the hub's."""
    hub_docs = await hub.storage.documents.states(TENANT)
    bad = []
    for agent in agents:
        for doc in agent.replica.documents():
            guid = doc.guid
            hub_doc = RecordDoc(doc.collection, doc.record_id, state=hub_docs.get(guid))
            if hub_doc.content() != doc.content():
                bad.append(guid)
    return bad
