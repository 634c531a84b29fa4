"""The WebOS Oracle pages: canvas pages (list, create, the live page), revisions, rollback,
forks and merge requests. Every handler calls `hub.canvas.Canvases`, the same service the REST
API (`hub.api.oracle`) calls, so sharing, validation and the CRDT write path are the same."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import BaseModel

from core.errors import AuthError, NotFound, PermissionDenied, VelocityError
from core.identity import Principal
from hub.canvas import Canvases
from hub.policy import Access, canvas_access
from hub.service import Hub
from hub.webos.oracle import components
from hub.webos.oracle.live_token import RENEW_EVERY_S, live_token
from hub.webos.render import PageRoute, env, redirect, render
from hub.webos.session import CsrfForm, PagePrincipal, check_csrf
from hub.yjs_endpoint import YJS_PATH
from schema.models import CanvasComponent, ComponentType

router = APIRouter(route_class=PageRoute, include_in_schema=False)
live_router = APIRouter(include_in_schema=False)
"""The live script's own calls (a token, a component's HTML): JSON errors, not pages."""

Row = dict[str, Any]
YJS_BASE = YJS_PATH.removesuffix("/{page_id}")
_PEOPLE = re.compile(r"[\s,;]+")
ACCESS_WORDS = {Access.VIEW: "view", Access.EDIT: "edit", Access.OWN: "edit and share"}
"""What the page tells a person they may do with it."""


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _canvases(request: Request) -> Canvases:
    return Canvases(_hub(request))


def _people(text: str) -> list[str]:
    """User ids typed into a form, separated by commas or spaces."""
    return [p for p in _PEOPLE.split(text.strip()) if p]


def _sharing_text(page: Row) -> str:
    """How a page is shared, as a person reads it."""
    audience = {"private": "Private", "team": f"Team {page.get('team_id') or ''}".strip(),
                "tenant": "Everyone"}.get(str(page.get("sharing")), str(page.get("sharing")))
    parts = [audience]
    if page.get("editors"):
        parts.append("editors: " + ", ".join(page["editors"]))
    if page.get("viewers"):
        parts.append("viewers: " + ", ".join(page["viewers"]))
    return " · ".join(parts)


def _json_script(value: Any) -> Markup:
    """JSON safe inside a ``<script type="application/json">``."""
    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


async def _refused(path: str, action: Callable[[], Awaitable[Response]]) -> Response:
    """Run a form's action; a refusal (bad input, no right, conflict) goes back to ``path``
    with the reason shown, a missing session to the login page."""
    try:
        return await action()
    except AuthError as exc:
        if not isinstance(exc, PermissionDenied):
            raise
        return redirect(path, err=exc.message)
    except VelocityError as exc:
        return redirect(path, err=exc.message)


# --- the list ---------------------------------------------------------------------------------

@router.get("/oracle")
async def pages(request: Request, principal: PagePrincipal) -> HTMLResponse:
    rows = await _canvases(request).pages(principal, 200, 0)
    for row in rows:
        row["sharing_text"] = _sharing_text(row)
    mine = [r for r in rows if r["owner_id"] == principal.user_id]
    shared = [r for r in rows if r["owner_id"] != principal.user_id]
    return render(request, "oracle_list.html", principal, mine=mine, shared=shared)


@router.post("/oracle/pages")
async def create_page(request: Request, principal: PagePrincipal, form: CsrfForm) -> Response:
    async def create() -> Response:
        page = await _canvases(request).create(principal, {
            "title": form.get("title", "").strip(), "sharing": form.get("sharing", "private"),
            "editors": _people(form.get("editors", "")),
            "viewers": _people(form.get("viewers", ""))})
        return redirect(f"/oracle/pages/{page['id']}", msg="Canvas page created")
    return await _refused("/oracle", create)


# --- one page ---------------------------------------------------------------------------------

@router.get("/oracle/pages/{page_id}")
async def page(page_id: str, request: Request, principal: PagePrincipal) -> HTMLResponse:
    hub = _hub(request)
    row = await _canvases(request).page(principal, page_id)
    access = canvas_access(principal, row)
    user = await hub.accounts.caller(principal.tenant_id, principal.user_id)
    return render(
        request, "oracle_page.html", principal, page=row, access=ACCESS_WORDS[access],
        can_edit=access >= Access.EDIT, sharing_text=_sharing_text(row),
        views=[components.view(c) for c in row["components"]],
        initial=_json_script(row["components"]),
        ws_path=YJS_BASE,
        token=await live_token(hub, principal), renew_ms=RENEW_EVERY_S * 1000,
        user_name=user.full_name or user.user_id,
        types=[(t.value, components.TYPE_NAMES[t.value]) for t in ComponentType])


class RenderRequest(BaseModel):
    component: CanvasComponent


@live_router.get("/oracle/pages/{page_id}/live-token")
async def renew_live_token(page_id: str, request: Request, principal: PagePrincipal
                           ) -> dict[str, Any]:
    """A fresh token for the page's live connection (the page must still be visible)."""
    await _canvases(request).page(principal, page_id)
    return {"token": await live_token(_hub(request), principal),
            "renew_in_s": RENEW_EVERY_S}


@live_router.post("/oracle/pages/{page_id}/render")
async def render_component(page_id: str, body: RenderRequest, request: Request,
                           principal: PagePrincipal) -> HTMLResponse:
    """One component's HTML as the live script holds it (the same renderer as the page)."""
    check_csrf(request, None)
    row = await _canvases(request).page(principal, page_id)
    html = env.get_template("oracle_card.html").module.card(  # type: ignore[attr-defined]
        components.view(body.component.model_dump(mode="json")),
        canvas_access(principal, row) >= Access.EDIT)
    return HTMLResponse(str(html), headers={"Cache-Control": "no-store"})


# --- revisions, rollback, forks, merge requests -----------------------------------------------

@router.get("/oracle/pages/{page_id}/history")
async def history(page_id: str, request: Request, principal: PagePrincipal) -> HTMLResponse:
    canvases = _canvases(request)
    row = await canvases.page(principal, page_id)
    parent_id = await canvases.fork_parent(principal, page_id)
    proposed: list[Row] = []
    if parent_id is not None:
        proposed = [m for m in await _visible_merge_requests(canvases, principal, parent_id)
                    if m["fork_id"] == page_id]
    return render(
        request, "oracle_history.html", principal, page=row,
        can_edit=canvas_access(principal, row) >= Access.EDIT,
        revisions=list(reversed(await canvases.revisions(principal, page_id))),
        forks=await canvases.forks(principal, page_id),
        incoming=list(reversed(await canvases.merge_requests(principal, page_id, None))),
        parent_id=parent_id, proposed=proposed)


async def _visible_merge_requests(canvases: Canvases, principal: Principal, parent_id: str
                                  ) -> list[Row]:
    try:
        return await canvases.merge_requests(principal, parent_id, None)
    except VelocityError:
        return []


@router.post("/oracle/pages/{page_id}/revisions")
async def create_revision(page_id: str, request: Request, principal: PagePrincipal,
                          form: CsrfForm) -> Response:
    back = f"/oracle/pages/{page_id}/history"

    async def create() -> Response:
        name = form.get("name", "").strip()
        if not name or len(name) > 200:
            return redirect(back, err="A revision needs a name of 1 to 200 characters")
        await _canvases(request).create_revision(principal, page_id, name)
        return redirect(back, msg=f"Revision “{name}” saved")
    return await _refused(back, create)


@router.get("/oracle/pages/{page_id}/revisions/{revision_id}")
async def revision(page_id: str, revision_id: str, request: Request, principal: PagePrincipal
                   ) -> HTMLResponse:
    canvases = _canvases(request)
    row = await canvases.page(principal, page_id)
    rev = await canvases.revision(principal, page_id, revision_id)
    content = rev["content"]
    return render(request, "oracle_revision.html", principal, page=row, revision=rev,
                  content=content, can_edit=canvas_access(principal, row) >= Access.EDIT,
                  views=[components.view(c) for c in content.get("components", [])])


@router.post("/oracle/pages/{page_id}/rollback")
async def rollback(page_id: str, request: Request, principal: PagePrincipal, form: CsrfForm
                   ) -> Response:
    async def roll() -> Response:
        rev = await _canvases(request).revision(principal, page_id,
                                                form.get("revision_id", ""))
        await _canvases(request).rollback(principal, page_id, rev["revision_id"])
        return redirect(f"/oracle/pages/{page_id}", msg=f"Rolled back to “{rev['name']}”")
    return await _refused(f"/oracle/pages/{page_id}/history", roll)


@router.post("/oracle/pages/{page_id}/fork")
async def fork(page_id: str, request: Request, principal: PagePrincipal, form: CsrfForm
               ) -> Response:
    async def make() -> Response:
        title = form.get("title", "").strip() or None
        forked = await _canvases(request).fork(principal, page_id, title)
        return redirect(f"/oracle/pages/{forked['id']}",
                        msg="Forked: this private copy is yours; propose its changes back "
                            "from its history page")
    return await _refused(f"/oracle/pages/{page_id}/history", make)


@router.post("/oracle/pages/{page_id}/merge-requests")
async def open_merge_request(page_id: str, request: Request, principal: PagePrincipal,
                             form: CsrfForm) -> Response:
    back = f"/oracle/pages/{page_id}/history"

    async def propose() -> Response:
        title = form.get("title", "").strip()
        if not title or len(title) > 200:
            return redirect(back, err="A merge request needs a title of 1 to 200 characters")
        mr = await _canvases(request).open_merge_request(principal, page_id, title)
        return redirect(f"/oracle/merge-requests/{mr['mr_id']}", msg="Merge request opened")
    return await _refused(back, propose)


@router.get("/oracle/merge-requests/{mr_id}")
async def merge_request(mr_id: str, request: Request, principal: PagePrincipal
                        ) -> HTMLResponse:
    canvases = _canvases(request)
    mr = await canvases.merge_request(principal, mr_id)
    parent = await canvases.page(principal, mr["parent_id"])
    titles = {c["id"]: c.get("title") or c["id"] for c in parent["components"]}
    try:
        fork_title = (await canvases.page(principal, mr["fork_id"]))["title"]
    except NotFound:
        fork_title = None  # a private fork of someone else's: named, not linked
    return render(request, "oracle_merge_request.html", principal, mr=mr, diff=mr["diff"],
                  parent=parent, titles=titles, fork_title=fork_title,
                  type_names=components.TYPE_NAMES,
                  can_review=canvas_access(principal, parent) >= Access.EDIT)


@router.post("/oracle/merge-requests/{mr_id}/review")
async def review(mr_id: str, request: Request, principal: PagePrincipal, form: CsrfForm
                 ) -> Response:
    back = f"/oracle/merge-requests/{mr_id}"

    async def decide() -> Response:
        decision = form.get("decision", "")
        if decision not in ("approve", "reject"):
            return redirect(back, err="Choose approve or reject")
        comment = form.get("comment", "").strip()[:2000]
        mr = await _canvases(request).review(principal, mr_id, decision == "approve", comment)
        return redirect(back, msg=f"Merge request {mr['status']}")
    return await _refused(back, decide)
