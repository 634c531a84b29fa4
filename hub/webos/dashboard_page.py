"""The dashboard: pipeline value by stage, leads by source, QD distribution, recent activity
and (managers) devices online and offline with their pending changes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from hub.api.devices import devices as device_list
from hub.service import Hub
from hub.webos import charts, queries
from hub.webos.render import PageRoute, money, render
from hub.webos.session import PagePrincipal
from schema.models import OpportunityStage

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/dashboard")
async def dashboard(request: Request, principal: PagePrincipal) -> Response:
    hub: Hub = request.app.state.hub
    value_by_stage = dict(await queries.grouped(hub, principal, "opportunities", "t.stage",
                                                "sum(t.value)"))
    pipeline = [(s.value.replace("_", " ").capitalize(), value_by_stage.get(s.value, 0.0))
                for s in OpportunityStage]
    sources = await queries.grouped(hub, principal, "leads", "coalesce(t.source, 'unknown')",
                                    "count(*)")
    qd = await queries.qd_histogram(hub, principal)
    devices = await device_list(principal, hub) if principal.is_manager else []
    open_value = sum(v for s, v in value_by_stage.items() if not s.startswith("CLOSED"))
    return render(
        request, "dashboard.html", principal,
        stats={"leads": await queries.count(hub, principal, "leads"),
               "clients": await queries.count(hub, principal, "people"),
               "open_value": open_value,
               "open_tasks": await queries.count(hub, principal, "tasks", "t.status = 'OPEN'")},
        pipeline_chart=charts.bars(pipeline, "Pipeline value by opportunity stage", money),
        sources_chart=charts.bars(sources[:8], "Leads by source"),
        qd_chart=charts.histogram(qd, queries.QD_EDGES, "QD score distribution"),
        activity=await queries.recent_activity(hub, principal),
        devices=devices, online=sum(d.online for d in devices),
        pending=sum(d.pending for d in devices if d.status == "active"))
