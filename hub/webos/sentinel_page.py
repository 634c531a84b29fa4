"""Sentinel: perception sessions and QD scores by showroom (the kiosk asset a session ran on)
and by visitor, and the biometric consent records, with revocation (`hub.sentinel.revoke`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from core.errors import VelocityError
from hub import sentinel
from hub.service import Hub
from hub.storage import projection as proj
from hub.webos.render import PageRoute, redirect, render
from hub.webos.session import CsrfForm, PagePrincipal

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/sentinel")
async def sentinel_page(request: Request, principal: PagePrincipal) -> Response:
    hub: Hub = request.app.state.hub
    rows, webos = hub.storage.projection.rows, hub.storage.webos
    sessions = await rows(principal, "perception_sessions", order=proj.BY_STARTED_NEWEST,
                          limit=50)
    consents = await rows(principal, "consents", order=proj.BY_GRANTED_NEWEST, limit=50)
    by_showroom = await webos.sessions_by_showroom(principal)
    showroom_qd = dict(await webos.showroom_qd(principal))
    visitors = await webos.visitor_qd(principal)
    visitor_counts = dict(await webos.visitor_scores(principal))
    people = {p for p in [s["person_id"] for s in sessions] + [c["person_id"] for c in consents]
              + [v for v, _ in visitors[:25]] if p}
    names = {r["id"]: r["full_name"] for r in await rows(
        principal, "people", proj.among("id", sorted(people)), limit=max(1, len(people)),
        columns=proj.columns("id", "full_name"))} if people else {}
    return render(request, "sentinel.html", principal, sessions=sessions, consents=consents,
                  showrooms=[(s, int(n), showroom_qd.get(s)) for s, n in by_showroom],
                  visitors=[(v, avg, int(visitor_counts.get(v, 0))) for v, avg in visitors[:25]],
                  names=names)


@router.post("/sentinel/consents/{session_id}/revoke")
async def revoke(request: Request, principal: PagePrincipal, session_id: str, form: CsrfForm
                 ) -> Response:
    """Revoke a session's consent and purge its results from every replica."""
    hub: Hub = request.app.state.hub
    try:
        done = await sentinel.revoke(hub, principal, person_id=None, session_id=session_id)
    except VelocityError as exc:
        return redirect("/sentinel", err=exc.message)
    return redirect("/sentinel", msg=f"Consent revoked; {done['results_purged']} results "
                    "purged.")
