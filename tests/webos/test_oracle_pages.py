"""The WebOS Oracle pages in a real browser (Playwright driving Debian's Chromium): a canvas a
Python edge edits concurrently changes live in the page, the page's edits reach the edge, a
viewer gets a read-only page whose edits the hub refuses anyway, revisions, fork, merge request
and rollback work through the forms; plus refusals over plain HTTP and accessibility basics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from playwright.async_api import Browser, Page, expect

from edge_agent.service import EdgeAgent
from hub.server import HubServer
from schema import canvas
from tests.hubkit import login, running_hub
from tests.reliability.kit import paired, until
from tests.webos.kit import web_login
from tests.webos.test_browser import browser, check_basics, shots_folder, sign_in

pytestmark = pytest.mark.anyio
PAGES = "/api/oracle/v1/canvas-pages"
CANVAS = "canvas_pages"


def sample_components() -> list[dict[str, Any]]:
    """One component of every type, with data rows and layouts."""
    weeks = [f"2026-11-{d:02d}" for d in (2, 9, 16, 23, 30)]
    return [
        {"id": "kpi", "type": "kpi", "title": "Open leads", "config": {"label": "open leads"},
         "data_rows": [{"leads": 1284}], "layout": {"w": 3, "h": 2}},
        {"id": "bars", "type": "bar_chart", "title": "Leads by city",
         "config": {"x": "city", "y": "leads"}, "layout": {"w": 5, "h": 3},
         "data_rows": [{"city": c, "leads": n} for c, n in
                       (("Dubai", 42), ("Pune", 31), ("London", 17), ("Mumbai", 26))]},
        {"id": "line", "type": "line_chart", "title": "Site visits per week",
         "config": {"x": "week", "y": "visits"}, "layout": {"w": 4, "h": 3},
         "data_rows": [{"week": w, "visits": v} for w, v in zip(weeks, (8, 13, 11, 19, 23),
                                                                strict=True)]},
        {"id": "table", "type": "table", "title": "Hot leads", "layout": {"w": 6},
         "data_rows": [{"name": "Zara Khan", "city": "Dubai", "budget": 20_000_000},
                       {"name": "Omar Sheikh", "city": "Pune", "budget": 12_500_000}]},
        {"id": "stream", "type": "activity_stream", "title": "Recent activity",
         "layout": {"w": 6},
         "data_rows": [{"at": "2026-11-30T10:05", "what": "Site visit: Tower B, 3BHK"},
                       {"at": "2026-11-30T11:40", "what": "Call back booked"}]},
        {"id": "board", "type": "pipeline_board", "title": "Pipeline", "layout": {"w": 8},
         "data_rows": [{"stage": "QUALIFIED", "name": "Zara Khan"},
                       {"stage": "SITE_VISIT", "name": "Omar Sheikh"},
                       {"stage": "PROPOSAL", "name": "Lena Park"}]},
        {"id": "client", "type": "client_summary", "title": "Zara Khan", "layout": {"w": 4},
         "data_rows": [{"segment": "Whale", "budget": "2 Cr", "interest": "Penthouse"}]},
    ]


async def signed_in(browser: Browser, server: HubServer, email: str) -> Page:
    """A page of a new browser context, logged in through the login form."""
    context = await browser.new_context(base_url=server.url,
                                        viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    await sign_in(page, server, email)
    return page


async def open_live(page: Page, page_id: str) -> None:
    await page.goto(f"/oracle/pages/{page_id}")
    await expect(page.locator("#oc-page")).to_have_attribute("data-live", "synced",
                                                             timeout=20_000)


async def create_page(server: HubServer, email: str, values: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(PAGES, headers=await login(server, email), json={"values": values})
        assert r.status_code == 201, r.text
        page_id: str = r.json()["id"]
        return page_id


async def hub_page(server: HubServer, email: str, page_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get(f"{PAGES}/{page_id}", headers=await login(server, email))
        assert r.status_code == 200, r.text
        page: dict[str, Any] = r.json()
        return page


async def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """A full-page screenshot, into ``$VELOCITY_WEBOS_SCREENSHOTS`` when set (the docs use
    docs/screenshots), else the test's temporary folder."""
    await page.screenshot(path=str(shots_folder(tmp_path) / name), full_page=True)


def card(page: Page, component_id: str) -> Any:
    return page.locator(f'#oc-components [data-component-id="{component_id}"]')


async def card_ids(page: Page) -> list[str]:
    ids: list[str] = await page.eval_on_selector_all(
        "#oc-components [data-component-id]", "nodes => nodes.map(n => n.dataset.componentId)")
    return ids


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    await until(check, timeout=20, what=what)


def edge_components(edge: EdgeAgent, page_id: str) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = edge.replica.record(CANVAS, page_id).model_dump(
        mode="json")["components"]
    return components


# --- live editing with a Python edge -----------------------------------------------------------

async def test_an_edge_and_the_browser_edit_one_canvas_live(chromium: Path, tmp_path: Path
                                                            ) -> None:
    async with running_hub() as server:
        pid = await create_page(server, "junior_broker@t1.test", {
            "title": "Weekly sales meeting", "narrative": "Agenda: pipeline, visits, hot leads.",
            "editors": ["t1-senior_broker"], "components": sample_components()})
        settings = await paired(server, tmp_path / "ipad", "t1-senior_broker")
        async with EdgeAgent(settings) as edge, browser(chromium) as chrome:
            await eventually(lambda: _holds(edge, pid), "the edge holds the page")
            page = await signed_in(chrome, server, "junior_broker@t1.test")
            await open_live(page, pid)
            await expect(page.locator("#oc-presence")).to_contain_text("(you)")
            await screenshot(page, tmp_path, "oracle-page.png")
            await expect(card(page, "bars").locator("rect.oc-bar")).to_have_count(4)

            # the edge renames a chart and adds a bar, and moves the table first: live here
            await edge.write(CANVAS, pid, lambda c: {"components": canvas.move(canvas.update(
                c["components"], "bars", {
                    "title": "Leads by city (from the iPad)",
                    "data_rows": [{"city": "Dubai", "leads": 44}, {"city": "Pune", "leads": 31},
                                  {"city": "London", "leads": 17}, {"city": "Mumbai", "leads": 26},
                                  {"city": "Doha", "leads": 9}]}), "table", None, first=True)})
            await expect(card(page, "bars").locator(".oc-title")).to_have_text(
                "Leads by city (from the iPad)")
            await expect(card(page, "bars").locator("rect.oc-bar")).to_have_count(5)
            await eventually(lambda: _first(page, "table"), "the moved table is first")
            await edge.write(CANVAS, pid, {"title": "Weekly sales meeting (edited on the iPad)"})
            await expect(page.locator("#oc-page-title")).to_have_text(
                "Weekly sales meeting (edited on the iPad)")

            # the browser edits: rename (keyboard only), add, move, remove: the edge gets each
            await card(page, "kpi").get_by_role("button", name="Rename Open leads").focus()
            await page.keyboard.press("Enter")
            await expect(card(page, "kpi").get_by_label("New title")).to_be_focused()
            await page.keyboard.type("Open leads this week")
            await page.keyboard.press("Enter")
            await eventually(lambda: _edge_title(edge, pid, "kpi", "Open leads this week"),
                             "the rename reached the edge")
            await page.get_by_label("Type").select_option("table")
            await page.get_by_label("Title", exact=True).fill("Bookings to chase")
            await page.get_by_role("button", name="Add component").click()
            await eventually(lambda: _edge_has_title(edge, pid, "Bookings to chase"),
                             "the new component reached the edge")
            await expect(page.locator("#oc-components .oc-title",
                                      has_text="Bookings to chase")).to_be_visible()
            await card(page, "client").get_by_role("button", name="Remove Zara Khan").click()
            await expect(card(page, "client")).to_have_count(0)
            await expect(card(page, "table").get_by_role("button", name="Move Hot leads earlier")
                         ).to_be_disabled()  # it is first
            await card(page, "table").get_by_role("button", name="Move Hot leads later").focus()
            await page.keyboard.press("Enter")
            await expect(card(page, "table").get_by_role("button", name="Move Hot leads later")
                         ).to_be_focused()  # the keyboard stays with the moved component
            await eventually(lambda: _edge_order_starts(edge, pid, ["kpi", "table"]),
                             "the removal and the move reached the edge")
            assert "client" not in [c["id"] for c in edge_components(edge, pid)]
            assert await edge.replica.refusals() == []

            # presence: another editor joins and is shown; the hub holds what everyone sees
            other = await signed_in(chrome, server, "senior_broker@t1.test")
            await open_live(other, pid)
            await expect(page.locator("#oc-presence")).to_contain_text("Senior_Broker t1")
            await expect(other.locator("#oc-presence")).to_contain_text("Junior_Broker t1")
            assert await card_ids(other) == await card_ids(page)
            stored = await hub_page(server, "junior_broker@t1.test", pid)
            assert [c["id"] for c in stored["components"]] == await card_ids(page)


MOVES = """(count) => {
  let seed = 7
  const next = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const ids = () => [...document.querySelectorAll('#oc-components [data-component-id]')]
    .map((n) => n.dataset.componentId)
  const expected = ids()
  for (let i = 0; i < count; i++) {
    const id = expected[next(expected.length)]
    const index = next(expected.length)
    window.oracleLive.editor.move(id, index)
    expected.splice(expected.indexOf(id), 1)
    expected.splice(index, 0, id)
  }
  return { shown: ids(), expected }
}"""
"""Random moves through the page's editor (a fixed seed); returns the order the page shows and
the order the moves meant."""


async def test_many_moves_in_the_browser_keep_the_hub_in_the_same_order(chromium: Path
                                                                        ) -> None:
    """The script's positions (a port of sync/position.py) are accepted by the hub and sort
    there as they sort in the browser, however often the same gaps are split."""
    async with running_hub() as server, browser(chromium) as chrome:
        pid = await create_page(server, "junior_broker@t1.test", {
            "title": "Shuffle", "components": sample_components()})
        page = await signed_in(chrome, server, "junior_broker@t1.test")
        await open_live(page, pid)
        moved = await page.evaluate(MOVES, 60)
        shown: list[str] = moved["shown"]
        assert shown == moved["expected"]

        async def hub_agrees() -> bool:
            stored = await hub_page(server, "junior_broker@t1.test", pid)
            return [c["id"] for c in stored["components"]] == shown
        await eventually(hub_agrees, "the hub holds the browser's order")
        await expect(page.locator("#oc-page")).to_have_attribute("data-live", "synced")
        page_b = await signed_in(chrome, server, "junior_broker@t1.test")
        await open_live(page_b, pid)
        assert await card_ids(page_b) == shown


async def _holds(edge: EdgeAgent, pid: str) -> bool:
    return f"{CANVAS}/{pid}" in {d.guid for d in edge.replica.documents()}


async def _first(page: Page, component_id: str) -> bool:
    return (await card_ids(page))[:1] == [component_id]


async def _edge_title(edge: EdgeAgent, pid: str, component_id: str, title: str) -> bool:
    return any(c["id"] == component_id and c["title"] == title
               for c in edge_components(edge, pid))


async def _edge_has_title(edge: EdgeAgent, pid: str, title: str) -> bool:
    return any(c["title"] == title for c in edge_components(edge, pid))


async def _edge_order_starts(edge: EdgeAgent, pid: str, ids: list[str]) -> bool:
    return [c["id"] for c in edge_components(edge, pid)][:len(ids)] == ids


# --- a viewer ----------------------------------------------------------------------------------

async def test_a_viewer_gets_a_read_only_page_and_the_hub_refuses_their_edits(
        chromium: Path, tmp_path: Path) -> None:
    async with running_hub() as server, browser(chromium) as chrome:
        pid = await create_page(server, "junior_broker@t1.test", {
            "title": "Board review", "viewers": ["t1-junior2"], "editors": ["t1-senior_broker"],
            "components": sample_components()[:3]})
        viewer = await signed_in(chrome, server, "junior2@t1.test")
        await open_live(viewer, pid)
        await expect(viewer.locator("#oc-readonly")).to_be_visible()
        await expect(viewer.locator("#oc-status")).to_have_text("Live, view only")
        await expect(viewer.locator("#oc-add")).to_have_count(0)
        await expect(viewer.locator("#oc-components button")).to_have_count(0)

        editor = await signed_in(chrome, server, "senior_broker@t1.test")
        await open_live(editor, pid)
        await card(editor, "kpi").get_by_role("button", name="Rename Open leads").click()
        await card(editor, "kpi").get_by_label("New title").fill("Leads open now")
        await card(editor, "kpi").get_by_role("button", name="Save").click()
        await expect(card(viewer, "kpi").locator(".oc-title")).to_have_text("Leads open now")
        await expect(viewer.locator("#oc-presence")).to_contain_text("Senior_Broker t1")
        await screenshot(viewer, tmp_path, "oracle-read-only.png")

        # an edit forced through the page's own script: the hub refuses it and keeps the page
        await viewer.evaluate("window.oracleLive.editor.rename('kpi', 'Sneaky')")
        await expect(viewer.locator("#oc-page")).to_have_attribute("data-live", "refused")
        await expect(viewer.locator("#oc-status")).to_contain_text("view_only")
        stored = await hub_page(server, "junior_broker@t1.test", pid)
        assert stored["components"][0]["title"] == "Leads open now"
        await expect(card(editor, "kpi").locator(".oc-title")).to_have_text("Leads open now")


# --- revisions, fork, merge request, rollback --------------------------------------------------

async def test_revisions_fork_merge_request_and_rollback_through_the_forms(
        chromium: Path, tmp_path: Path) -> None:
    async with running_hub() as server, browser(chromium) as chrome:
        pid = await create_page(server, "junior_broker@t1.test", {
            "title": "Quarter plan", "sharing": "team", "components": sample_components()[:4]})
        owner = await signed_in(chrome, server, "junior_broker@t1.test")
        await owner.goto(f"/oracle/pages/{pid}/history")
        await owner.get_by_label("Save the page as it stands, named").fill("Before the review")
        await owner.get_by_role("button", name="Save revision").click()
        await expect(owner.locator(".flash-ok")).to_contain_text("Before the review")

        async with httpx.AsyncClient(base_url=server.url) as http:
            auth = await login(server, "junior_broker@t1.test")
            r = await http.delete(f"{PAGES}/{pid}/components/table", headers=auth)
            assert r.status_code == 200, r.text
            r = await http.patch(f"{PAGES}/{pid}/components/kpi", headers=auth,
                                 json={"values": {"title": "Renamed by mistake"}})
            assert r.status_code == 200, r.text
        await owner.get_by_role("link", name="Before the review").click()
        await expect(owner.locator("h1")).to_have_text("Revision “Before the review”")
        await expect(card(owner, "table")).to_be_visible()
        await expect(card(owner, "kpi").locator(".oc-title")).to_have_text("Open leads")
        await owner.get_by_role("button", name="Roll the page back to this revision").click()
        await expect(owner.locator(".flash-ok")).to_contain_text("Rolled back to")
        await expect(card(owner, "table")).to_be_visible()
        stored = await hub_page(server, "junior_broker@t1.test", pid)
        assert [c["id"] for c in stored["components"]] == ["kpi", "bars", "line", "table"]
        assert stored["components"][0]["title"] == "Open leads"

        # a teammate who may only view forks, edits the fork live and proposes it back
        forker = await signed_in(chrome, server, "senior_broker@t1.test")
        await forker.goto(f"/oracle/pages/{pid}/history")
        await forker.get_by_label("Fork into a private page of yours, titled").fill(
            "Quarter plan (my take)")
        await forker.get_by_role("button", name="Fork", exact=True).click()
        await expect(forker.locator("#oc-page")).to_have_attribute("data-live", "synced",
                                                                   timeout=20_000)
        fork_id = await forker.locator("#oc-page").get_attribute("data-page-id")
        assert fork_id and fork_id != pid
        await forker.get_by_label("Type").select_option("kpi")
        await forker.get_by_label("Title", exact=True).fill("Commission forecast")
        await forker.get_by_role("button", name="Add component").click()
        await card(forker, "bars").get_by_role("button", name="Rename Leads by city").click()
        await card(forker, "bars").get_by_label("New title").fill("Leads by city, Q4")
        await card(forker, "bars").get_by_label("New title").press("Enter")

        async def fork_has_both() -> bool:
            titles = [c["title"] for c in
                      (await hub_page(server, "senior_broker@t1.test", fork_id))["components"]]
            return "Commission forecast" in titles and "Leads by city, Q4" in titles
        await eventually(fork_has_both, "the fork's live edits reached the hub")
        await forker.goto(f"/oracle/pages/{fork_id}/history")
        await forker.get_by_label("Propose this fork's changes to the parent, titled").fill(
            "Q4 additions")
        await forker.get_by_role("button", name="Open merge request").click()
        await expect(forker.locator("h1")).to_have_text("Merge request “Q4 additions”")
        await expect(forker.locator(".oc-added")).to_contain_text("Commission forecast")
        await expect(forker.locator(".oc-changed")).to_have_text("Leads by city: title")
        await expect(forker.get_by_role("button", name="Approve and merge")).to_have_count(0)

        # the owner finds it on the page's history, reads the diff and approves
        await owner.goto(f"/oracle/pages/{pid}/history")
        await screenshot(owner, tmp_path, "oracle-history.png")
        await owner.get_by_role("link", name="Q4 additions").click()
        await screenshot(owner, tmp_path, "oracle-merge-request.png")
        await owner.get_by_label("Comment (optional)").fill("Looks right")
        await owner.get_by_role("button", name="Approve and merge").click()
        await expect(owner.locator("#oc-mr-status")).to_have_text("Approved")
        stored = await hub_page(server, "junior_broker@t1.test", pid)
        titles = [c["title"] for c in stored["components"]]
        assert titles[-1] == "Commission forecast" and "Leads by city, Q4" in titles

        # a second proposal, rejected: the parent stays as it is
        await forker.goto(f"/oracle/pages/{fork_id}")
        await expect(forker.locator("#oc-page")).to_have_attribute("data-live", "synced",
                                                                   timeout=20_000)
        await card(forker, "line").get_by_role("button", name="Remove Site visits per week"
                                               ).click()
        await eventually(lambda: _gone(server, fork_id, "line"), "the removal reached the hub")
        await forker.goto(f"/oracle/pages/{fork_id}/history")
        await forker.get_by_label("Propose this fork's changes to the parent, titled").fill(
            "Drop the visits chart")
        await forker.get_by_role("button", name="Open merge request").click()
        await expect(forker.locator(".oc-removed")).to_contain_text("Site visits per week")
        mr_url = forker.url.split("?")[0]
        await owner.goto(mr_url)
        await owner.get_by_role("button", name="Reject").click()
        await expect(owner.locator("#oc-mr-status")).to_have_text("Rejected")
        after = await hub_page(server, "junior_broker@t1.test", pid)
        assert after["components"] == stored["components"]


async def _gone(server: HubServer, page_id: str, component_id: str) -> bool:
    page = await hub_page(server, "senior_broker@t1.test", page_id)
    return component_id not in [c["id"] for c in page["components"]]


# --- refusals over plain HTTP ------------------------------------------------------------------

def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def test_refusals_are_clear_and_change_nothing() -> None:
    async with running_hub() as server, \
            httpx.AsyncClient(base_url=server.url) as owner, \
            httpx.AsyncClient(base_url=server.url) as viewer, \
            httpx.AsyncClient(base_url=server.url) as stranger:
        pid = await create_page(server, "junior_broker@t1.test", {
            "title": "Private plan", "viewers": ["t1-junior2"],
            "components": sample_components()[:2]})
        before = await hub_page(server, "junior_broker@t1.test", pid)
        r = await owner.get(f"/oracle/pages/{pid}")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        r = await owner.get(f"/oracle/pages/{pid}/live-token")
        assert r.status_code == 401 and r.json()["error"] == "no_session"
        await web_login(owner, "junior_broker@t1.test")
        await web_login(viewer, "junior2@t1.test")
        await web_login(stranger, "senior_broker@t1.test")
        token = _csrf((await owner.get("/oracle")).text)

        # not shared: a 404 page, a 404 token, no render
        for path in (f"/oracle/pages/{pid}", f"/oracle/pages/{pid}/history"):
            r = await stranger.get(path)
            assert r.status_code == 404 and "no canvas page" in r.text
        assert (await stranger.get(f"/oracle/pages/{pid}/live-token")).status_code == 404
        stranger_token = _csrf((await stranger.get("/oracle")).text)
        r = await stranger.post(f"/oracle/pages/{pid}/render", headers={
            "X-CSRF-Token": stranger_token}, json={"component": sample_components()[0]})
        assert r.status_code == 404

        # forms without the session's CSRF token are refused
        r = await owner.post("/oracle/pages", data={"title": "Forged"})
        assert r.status_code == 403 and "reload the page" in r.text
        r = await owner.post(f"/oracle/pages/{pid}/render",
                             json={"component": sample_components()[0]})
        assert r.status_code == 403 and r.json()["error"] == "csrf"

        # bad input: back to the form with the reason
        for path, data, reason in (
                ("/oracle/pages", {"title": ""}, "title"),
                ("/oracle/pages", {"title": "X", "sharing": "world"}, "sharing"),
                (f"/oracle/pages/{pid}/revisions", {"name": " "}, "needs a name"),
                (f"/oracle/pages/{pid}/rollback", {"revision_id": "nope"}, "no revision"),
                (f"/oracle/pages/{pid}/merge-requests", {"title": "Mine"}, "not a fork"),
                ("/oracle/merge-requests/nope/review", {"decision": "approve"},
                 "no merge request")):
            r = await owner.post(path, data={"csrf_token": token, **data})
            assert r.status_code == 303, (path, r.status_code, r.text)
            assert "err=" in r.headers["location"], (path, r.headers["location"])
            assert reason in httpx.URL(r.headers["location"]).params["err"], (path, reason)
        r = await owner.post(f"/oracle/pages/{pid}/render", headers={"X-CSRF-Token": token},
                             json={"component": {"id": "x", "type": "pie"}})
        assert r.status_code == 422
        assert len((await owner.get("/oracle")).text.split("/oracle/pages/")) == 2  # one page

        # a viewer may save revisions and fork, not roll back or review
        viewer_token = _csrf((await viewer.get(f"/oracle/pages/{pid}/history")).text)
        r = await viewer.post(f"/oracle/pages/{pid}/revisions",
                              data={"csrf_token": viewer_token, "name": "Viewer's checkpoint"})
        assert "msg=" in r.headers["location"]
        history = await viewer.get(f"/oracle/pages/{pid}/history")
        revision_id = re.search(r"/revisions/([0-9a-f-]+)\"", history.text)
        assert revision_id and "Roll back" not in history.text
        r = await viewer.post(f"/oracle/pages/{pid}/rollback", data={
            "csrf_token": viewer_token, "revision_id": revision_id.group(1)})
        assert "may only view" in httpx.URL(r.headers["location"]).params["err"]
        r = await viewer.post(f"/oracle/pages/{pid}/fork",
                              data={"csrf_token": viewer_token, "title": "Viewer's copy"})
        fork_id = r.headers["location"].split("/")[-1].split("?")[0]
        r = await viewer.post(f"/oracle/pages/{fork_id}/merge-requests",
                              data={"csrf_token": viewer_token, "title": "Please"})
        mr_path = r.headers["location"].split("?")[0]
        r = await viewer.post(f"{mr_path}/review",
                              data={"csrf_token": viewer_token, "decision": "approve"})
        assert "may only view" in httpx.URL(r.headers["location"]).params["err"]
        r = await owner.post(f"{mr_path}/review", data={"csrf_token": token, "decision": "maybe"})
        assert "approve or reject" in httpx.URL(r.headers["location"]).params["err"]
        assert await hub_page(server, "junior_broker@t1.test", pid) == before


async def test_the_live_token_ends_with_the_session() -> None:
    """The page's token is an ordinary short-lived access token: logging out ends it, and the
    Yjs endpoint then refuses it."""
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        pid = await create_page(server, "junior_broker@t1.test", {"title": "Mine"})
        await web_login(http, "junior_broker@t1.test")
        r = await http.get(f"/oracle/pages/{pid}/live-token")
        assert r.status_code == 200
        live = r.json()["token"]
        assert (await http.get("/api/auth/me", headers={
            "Authorization": f"Bearer {live}"})).status_code == 200
        r = await http.post("/logout", data={"csrf_token": _csrf((await http.get(
            "/oracle")).text)})
        assert r.status_code == 303
        ws_url = server.url.replace("http", "ws") + f"/api/oracle/v1/ws/oracle/canvas/{pid}"
        async with websockets.connect(f"{ws_url}?token={live}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


# --- accessibility basics ----------------------------------------------------------------------

NAMELESS = """() => [...document.querySelectorAll('button, a[href]')]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 100))"""
"""Visible buttons and links without an accessible name."""


async def test_oracle_pages_have_labels_names_contrast_and_fit(chromium: Path, tmp_path: Path
                                                               ) -> None:
    async with running_hub() as server, browser(chromium) as chrome:
        pid = await create_page(server, "junior_broker@t1.test", {
            "title": "Weekly sales meeting", "sharing": "team", "editors": ["t1-senior_broker"],
            "narrative": "Agenda: pipeline, visits, hot leads.",
            "components": sample_components()})
        await create_page(server, "senior_broker@t1.test", {
            "title": "Tower B launch", "sharing": "tenant", "viewers": ["t1-junior2"]})
        async with httpx.AsyncClient(base_url=server.url) as http:
            auth = await login(server, "junior_broker@t1.test")
            revision = (await http.post(f"{PAGES}/{pid}/revisions", headers=auth,
                                        json={"name": "Monday"})).json()
        page = await signed_in(chrome, server, "junior_broker@t1.test")
        for width in (1440, 1024):
            await page.set_viewport_size({"width": width, "height": 900})
            for path in ("/oracle", f"/oracle/pages/{pid}", f"/oracle/pages/{pid}/history",
                         f"/oracle/pages/{pid}/revisions/{revision['revision_id']}"):
                await page.goto(path)
                await check_basics(page)
                assert await page.evaluate(NAMELESS) == [], path
        await page.set_viewport_size({"width": 1360, "height": 900})
        await page.goto("/oracle")
        await screenshot(page, tmp_path, "oracle-list.png")

        # the keyboard starts at the skip link, which leads into the page's content
        await open_live(page, pid)
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        await page.keyboard.press("Enter")
        await page.keyboard.press("Tab")
        await expect(page.locator("main").get_by_role("link", name="Oracle")).to_be_focused()
