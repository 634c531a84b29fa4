"""The dashboard: pipeline value by stage, leads by source, QD distribution, recent activity
and (managers) devices online and offline with their pending changes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from hub.api.devices import devices as device_list
from hub.service import Hub
from hub.storage import projection as proj
from hub.storage.webos import QD_EDGES
from hub.webos import charts
from hub.webos.render import PageRoute, money, render
from hub.webos.session import PagePrincipal
from schema.models import OpportunityStage

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/dashboard")
async def dashboard(request: Request, principal: PagePrincipal) -> Response:
    hub: Hub = request.app.state.hub
    webos, count = hub.storage.webos, hub.storage.projection.count
    value_by_stage = dict(await webos.value_by_stage(principal))
    pipeline = [(s.value.replace("_", " ").capitalize(), value_by_stage.get(s.value, 0.0))
                for s in OpportunityStage]
    sources = await webos.leads_by_source(principal)
    qd = await webos.qd_histogram(principal)
    devices = await device_list(principal, hub) if principal.is_manager else []
    open_value = sum(v for s, v in value_by_stage.items() if not s.startswith("CLOSED"))
    return render(
        request, "dashboard.html", principal,
        stats={"leads": await count(principal, "leads"),
               "clients": await count(principal, "people"),
               "open_value": open_value,
               "open_tasks": await count(principal, "tasks", proj.eq("status", "OPEN"))},
        pipeline_chart=charts.bars(pipeline, "Pipeline value by opportunity stage", money),
        sources_chart=charts.bars(sources[:8], "Leads by source"),
        qd_chart=charts.histogram(qd, QD_EDGES, "QD score distribution"),
        activity=await webos.recent_activity(principal),
        devices=devices, online=sum(d.online for d in devices),
        pending=sum(d.pending for d in devices if d.status == "active"))
