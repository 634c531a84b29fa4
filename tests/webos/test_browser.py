"""The WebOS in a real browser (Debian's Chromium through Playwright) against a real hub and a
running edge agent: sign in, search, edit a client and see the change reach the edge, see an
edge's change appear without a reload, move leads on the kanban by drag and by keyboard (and a
junior broker's refusal), revoke a device; on every page at 1440 px and 1024 px: every control
labelled, text contrast >= 4.5:1 from the computed styles, no sideways scrolling.

Screenshots go to ``$VELOCITY_WEBOS_SCREENSHOTS`` when set (``docs/screenshots`` for the README),
else to the test's temporary folder."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright

from edge_agent.service import EdgeAgent
from hub.server import HubServer
from tests.hubkit import PASSWORD, running_hub
from tests.reliability.kit import paired, until
from tests.webos.conftest import CHROMIUM_ARGS
from tests.webos.kit import seed_crm

pytestmark = pytest.mark.anyio

A11Y = (Path(__file__).parent / "a11y.js").read_text()
WIDTHS = (1440, 1024)
MAIN_PAGES = ("/dashboard", "/crm/contacts", "/crm/clients/c-mine", "/crm/kanban",
              "/sentinel", "/admin/devices", "/admin/users", "/admin/audit", "/admin/gpu")


@asynccontextmanager
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def sign_in(page: Page, server: HubServer, email: str) -> None:
    await page.goto(f"{server.url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/dashboard")


async def check_basics(page: Page) -> dict[str, Any]:
    """Labels, contrast and fit of the current page (asserted here)."""
    found: dict[str, Any] = await page.evaluate(A11Y)
    where = page.url
    assert found["checked"] > 5, where
    assert found["unlabeled"] == [], (where, found["unlabeled"])
    assert found["low"] == [], (where, found["low"])
    assert found["overflow"] <= 0, (where, found["overflow"])
    return found


def shots_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VELOCITY_WEBOS_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _stage(server: HubServer, lead_id: str) -> str:
    stage: str = await server.hub.db.pool.fetchval(
        "SELECT stage FROM crm_leads WHERE id = $1", lead_id)
    return stage


async def test_a_director_works_the_webos_with_an_edge_online(chromium: Path, tmp_path: Path
                                                               ) -> None:
    shots = shots_folder(tmp_path)
    async with running_hub() as server:
        await seed_crm(server)
        settings = await paired(server, tmp_path / "ipad", "t1-junior_broker")
        async with EdgeAgent(settings) as edge, browser(chromium) as b:
            assert edge.sync is not None
            await until(lambda: _holds(edge, "c-mine"))
            page = await b.new_page(viewport={"width": 1440, "height": 900})
            await sign_in(page, server, "sales_director@t1.test")

            # every main page, at both widths: labels, contrast, fit; a screenshot of each
            for width in WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                for path in MAIN_PAGES:
                    response = await page.goto(f"{server.url}{path}")
                    assert response is not None and response.status == 200, path
                    await check_basics(page)
                    name = path.strip("/").replace("/", "-").replace("-c-mine", "")
                    await page.screenshot(path=str(shots / f"{name}-{width}.png"),
                                          full_page=True)
            await page.set_viewport_size({"width": 1440, "height": 900})

            # search a contact, open it, edit a field: the change reaches the running edge
            await page.goto(f"{server.url}/crm/contacts")
            await page.get_by_label("Search name, phone or email").fill("asha")
            await page.get_by_role("button", name="Search").click()
            await page.get_by_role("link", name="Asha Mehta").click()
            await page.wait_for_url("**/crm/clients/c-mine")
            await page.get_by_label("City").fill("Nashik")
            await page.get_by_role("button", name="Save changes").click()
            await page.get_by_text("Saved.").wait_for()
            await until(lambda: _city_on_edge(edge, "Nashik"))

            # an edge's change appears on the open page without a reload
            await page.evaluate("window.__stillHere = true")
            await edge.write("interactions", None, {
                "person_id": "c-mine", "kind": "visit", "summary": "Walked the show flat",
                "occurred_at": "2026-11-20T10:00:00+00:00"})
            await page.get_by_text("Walked the show flat").wait_for(timeout=20_000)
            assert await page.evaluate("window.__stillHere") is True

            # the kanban: drag a card, then move it with the keyboard only
            await page.goto(f"{server.url}/crm/kanban")
            card = page.locator('.lead-card[data-lead="l-mine"]')
            await card.drag_to(page.locator('.column[data-stage="SITE_VISIT"]'))
            await page.locator('.column[data-stage="SITE_VISIT"] .lead-card[data-lead="l-mine"]'
                               ).wait_for()
            await until(lambda: _has_stage(server, "l-mine", "SITE_VISIT"))
            await card.get_by_role("link").focus()
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.name") == "stage"
            await page.keyboard.press("ArrowDown")  # Site visit → Negotiation
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.textContent") == "Move"
            await page.keyboard.press("Enter")
            await page.locator('.column[data-stage="NEGOTIATION"] .lead-card[data-lead="l-mine"]'
                               ).wait_for()
            await until(lambda: _has_stage(server, "l-mine", "NEGOTIATION"))
            assert "Lead moved to negotiation" in await page.locator("#live-status").inner_text()

            # revoke the edge's device from the devices page: the edge stops syncing
            await page.goto(f"{server.url}/admin/devices")

            async def accept(dialog: Dialog) -> None:
                await dialog.accept()

            page.on("dialog", accept)
            row = page.locator(f'tr[data-device="{edge.pairing.device_id}"]')
            await row.get_by_role("button", name="Revoke").click()
            await page.get_by_text(f"Device {edge.pairing.device_id} revoked.").wait_for()
            assert "revoked" in await row.inner_text()
            await until(lambda: _stopped(edge))


async def test_a_junior_broker_sees_less_and_gets_clear_refusals(chromium: Path) -> None:
    async with running_hub() as server:
        await seed_crm(server)
        async with browser(chromium) as b:
            page = await b.new_page(viewport={"width": 1440, "height": 900})
            for width in WIDTHS:  # the login page itself, a wrong password shown
                await page.set_viewport_size({"width": width, "height": 800})
                await page.goto(f"{server.url}/login")
                await page.get_by_label("Email").fill("junior_broker@t1.test")
                await page.get_by_label("Password").fill("not the password")
                await page.get_by_role("button", name="Log in").click()
                await page.get_by_role("alert").get_by_text("wrong email or password").wait_for()
                await check_basics(page)
            await page.set_viewport_size({"width": 1440, "height": 900})
            await sign_in(page, server, "junior_broker@t1.test")
            nav = await page.get_by_role("navigation", name="Main").inner_text()
            assert "Pipeline" in nav and "Users" not in nav and "Devices" not in nav
            response = await page.goto(f"{server.url}/admin/users")
            assert response is not None and response.status == 403
            await page.get_by_text("requires role ADMIN or SALES_DIRECTOR").wait_for()
            await check_basics(page)

            await page.goto(f"{server.url}/crm/kanban")
            await check_basics(page)
            card = page.locator('.lead-card[data-lead="l-mine"]')
            await card.drag_to(page.locator('.column[data-stage="WON"]'))
            status = page.locator("#live-status")
            await status.get_by_text("may not move a lead to WON").wait_for()
            assert await status.get_attribute("role") == "alert"
            assert await page.locator('.column[data-stage="QUALIFIED"] .lead-card'
                                      '[data-lead="l-mine"]').count() == 1
            # the same refusal by keyboard, and without the script (a plain form post)
            await card.get_by_label("Move Asha Mehta to stage").select_option("WON")
            await card.get_by_role("button", name="Move").press("Enter")
            await status.get_by_text("may not move a lead to WON").wait_for()
            assert await _stage(server, "l-mine") == "QUALIFIED"
            await page.route("**/static/webos.js", lambda route: route.abort())
            await page.goto(f"{server.url}/crm/kanban")
            card = page.locator('.lead-card[data-lead="l-mine"]')
            await card.get_by_label("Move Asha Mehta to stage").select_option("WON")
            await card.get_by_role("button", name="Move").click()
            await page.get_by_role("alert").get_by_text("may not move a lead to WON").wait_for()
            assert await _stage(server, "l-mine") == "QUALIFIED"


async def _holds(edge: EdgeAgent, person_id: str) -> bool:
    try:
        edge.replica.record("people", person_id)
    except Exception:
        return False
    return True


async def _city_on_edge(edge: EdgeAgent, city: str) -> bool:
    return bool(getattr(edge.replica.record("people", "c-mine"), "city", None) == city)


async def _has_stage(server: HubServer, lead_id: str, stage: str) -> bool:
    return await _stage(server, lead_id) == stage


async def _stopped(edge: EdgeAgent) -> bool:
    return edge.sync is not None and edge.sync.stopped_reason is not None
