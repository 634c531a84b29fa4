"""CRM pages: contacts (search, filters, paging), the client 360 with its edit form, and the
kanban of leads by stage. Reads reuse `hub.api.crm`; every write goes through the hub's
`LocalWriter` (the CRDT write path of the REST API), judged by `hub.policy`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from core.errors import RecordInvalid, VelocityError
from core.identity import Principal
from hub.api import crm, pipeline
from hub.api.errors import status_for
from hub.policy import LEAD_STAGES_BY_ROLE
from hub.service import Hub
from hub.storage import projection as proj
from hub.webos import charts
from hub.webos.render import PageRoute, redirect, render
from hub.webos.session import CsrfForm, PagePrincipal
from schema.models import LeadStage

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 25
KANBAN_CARDS = 15
"""Cards shown per kanban column (the best QD first); the column header counts them all."""
EDITABLE_PERSON_FIELDS = ("full_name", "primary_phone", "email", "city", "country",
                          "nationality", "segment", "source", "notes")
"""The client fields the 360 form edits (owner and team change by reassignment only)."""


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


@router.get("/crm/contacts")
async def contacts(request: Request, principal: PagePrincipal,
                   q: str = Query("", max_length=100), city: str = Query("", max_length=100),
                   segment: str = Query("", max_length=100), page: int = Query(1, ge=1, le=10_000)
                   ) -> Response:
    hub = _hub(request)
    rows = await crm.contacts(principal, hub, q.strip(), city or None, segment or None, None,
                              PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    cities = await hub.storage.webos.people_by_city(principal)
    segments = await hub.storage.webos.people_by_segment(principal)
    return render(request, "contacts.html", principal, rows=rows[:PAGE_SIZE], q=q, city=city,
                  segment=segment, page=page, has_next=len(rows) > PAGE_SIZE,
                  cities=sorted(c for c, _ in cities), segments=sorted(s for s, _ in segments))


async def _client_page(request: Request, principal: Principal, person_id: str,
                       status_code: int = 200, error: VelocityError | None = None,
                       submitted: dict[str, str] | None = None) -> Response:
    hub = _hub(request)
    view = await crm.client_360(person_id, principal, hub)
    person = view["person"]
    interests = await hub.storage.projection.rows(
        principal, "property_interests", proj.eq("person_id", person_id), proj.BY_LEVEL)
    project_ids = sorted({i["project_id"] for i in interests if i["project_id"]})
    projects = {r["id"]: r["name"] for r in await hub.storage.projection.rows(
        principal, "projects", proj.among("id", project_ids), limit=max(1, len(project_ids)),
        columns=proj.columns("id", "name"))} if project_ids else {}
    history = [(_at(r["scored_at"]), float(r["score"])) for r in view["qd"]
               if r["score"] is not None]
    owners = ([u for u in await hub.accounts.users(principal.tenant_id) if u.active]
              if principal.is_manager else [])
    return render(
        request, "client.html", principal, status_code=status_code, person=person,
        owners=owners,
        form={**{f: person.get(f) or "" for f in EDITABLE_PERSON_FIELDS}, **(submitted or {})},
        error=error, view=view, interests=interests, projects=projects,
        timeline=await crm.timeline(person_id, principal, hub),
        qd_chart=charts.line(history, f"QD history of {person['full_name']}"))


def _at(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value)


@router.get("/crm/clients/{person_id}")
async def client(request: Request, principal: PagePrincipal, person_id: str) -> Response:
    return await _client_page(request, principal, person_id)


def _person_values(form: dict[str, str]) -> dict[str, Any]:
    """The edited fields: blank optional fields become empty (None), the name stays required."""
    values: dict[str, Any] = {}
    for name in EDITABLE_PERSON_FIELDS:
        if name not in form:
            continue
        text = form[name].strip()
        if name == "notes":
            values[name] = text
        elif name == "full_name":
            if not text:
                raise RecordInvalid("a client needs a name", problems=["full_name: required"])
            values[name] = text
        else:
            values[name] = text or None
    return values


@router.post("/crm/clients/{person_id}")
async def edit_client(request: Request, principal: PagePrincipal, person_id: str,
                      form: CsrfForm) -> Response:
    """Save the client form through the REST API's own edit (`hub.api.crm.update_client`)."""
    hub = _hub(request)
    try:
        values = _person_values(form)
        await crm.update_client(person_id, crm.Values(values=values), principal, hub)
    except VelocityError as exc:
        submitted = {k: v for k, v in form.items() if k in EDITABLE_PERSON_FIELDS}
        return await _client_page(request, principal, person_id, status_for(exc), exc,
                                  submitted)
    return redirect(f"/crm/clients/{person_id}", msg="Saved. The change is on its way to the "
                    "devices.")


@router.get("/crm/kanban")
async def kanban(request: Request, principal: PagePrincipal) -> Response:
    hub = _hub(request)
    board = await crm.kanban(principal, hub, KANBAN_CARDS)
    names = await _names(hub, principal, [c["person_id"] for col in board["columns"].values()
                                          for c in col["cards"]])
    allowed = {s.value for s in LEAD_STAGES_BY_ROLE[principal.role]}
    return render(request, "kanban.html", principal, columns=board["columns"], names=names,
                  stages=[s.value for s in LeadStage], allowed=allowed)


async def _names(hub: Hub, principal: Principal, person_ids: list[str]) -> dict[str, str]:
    if not person_ids:
        return {}
    rows = await hub.storage.projection.rows(principal, "people",
                                             proj.among("id", sorted(set(person_ids))),
                                             limit=len(person_ids),
                                             columns=proj.columns("id", "full_name"))
    return {r["id"]: r["full_name"] for r in rows}


@router.post("/crm/leads/{lead_id}/stage")
async def move(request: Request, principal: PagePrincipal, lead_id: str, form: CsrfForm
               ) -> Response:
    """Move a lead through the REST API's own stage move (`hub.api.pipeline.move_lead`: the
    policy's verdict, the stage history in the same transaction, an audit entry); a form, or
    the kanban's drag as a fetch asking for JSON."""
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        stage = form.get("stage", "")
        if stage not in {s.value for s in LeadStage}:
            raise RecordInvalid(f"{stage[:40]!r} is not a stage", problems=["stage: unknown"])
        await pipeline.move_lead(lead_id, pipeline.StageIn(stage=stage), principal,
                                 _hub(request))
    except VelocityError as exc:
        if wants_json:
            return JSONResponse({"error": exc.code, "detail": exc.message},
                                status_code=status_for(exc))
        return redirect("/crm/kanban", err=exc.message)
    done = f"Lead moved to {form['stage'].replace('_', ' ').lower()}."
    if wants_json:
        return JSONResponse({"status": "moved", "detail": done})
    return redirect("/crm/kanban", msg=done)


@router.post("/crm/leads/{lead_id}/reassign")
async def reassign(request: Request, principal: PagePrincipal, lead_id: str, form: CsrfForm
                   ) -> Response:
    """Give a lead and its open opportunities to another user (`hub.api.pipeline.reassign_lead`:
    managers only, by the policy), back to the client's page."""
    hub = _hub(request)
    back = f"/crm/clients/{form.get('person_id', '')}" if form.get("person_id") else "/crm/kanban"
    try:
        owner = form.get("owner_id", "").strip()
        if not owner or len(owner) > 64:
            raise RecordInvalid("choose who takes the lead", problems=["owner_id: required"])
        await pipeline.reassign_lead(lead_id, pipeline.ReassignIn(owner_id=owner), principal,
                                     hub)
    except VelocityError as exc:
        return redirect(back, err=exc.message)
    return redirect(back, msg="Lead reassigned; it moves to the new owner's devices.")


@router.post("/crm/clients/{person_id}/tasks")
async def add_task(request: Request, principal: PagePrincipal, person_id: str, form: CsrfForm
                   ) -> Response:
    """A task for this client (`hub.api.crm.create_client_task`, the REST route's own)."""
    back = f"/crm/clients/{person_id}"
    values: dict[str, Any] = {"title": form.get("title", "").strip()}
    if form.get("due_at"):
        values["due_at"] = form["due_at"]
    try:
        if not values["title"]:
            raise RecordInvalid("a task needs a title", problems=["title: required"])
        await crm.create_client_task(person_id, crm.Values(values=values), principal,
                                     _hub(request))
    except VelocityError as exc:
        return redirect(back, err=exc.message)
    return redirect(back, msg="Task added.")

