"""The broker's day offline on the device's local API: leads, the pipeline board,
opportunities, and the unit inventory with holds (placed and released offline).

A hold is a local change like any other; the hub arbitrates holds placed on two devices while
both were offline (the first committed wins). The losing device rebuilds the hold from the hub's
copy and keeps the refusal, which `GET /api/inventory/hold-refusals` shows with its reason.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.errors import NotFound
from edge_agent.service import EdgeAgent
from schema.inventory import (
    DEFAULT_HOLD_HOURS,
    HOLDS,
    MAX_HOLD_HOURS,
    place_values,
    release_values,
    unit_view,
)
from schema.models import LeadStage, OpportunityStage

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]
Row = dict[str, Any]


class HoldIn(BaseModel):
    hours: int = Field(DEFAULT_HOLD_HOURS, ge=1, le=MAX_HOLD_HOURS)
    lead_id: str | None = Field(None, max_length=64)
    person_id: str | None = Field(None, max_length=64)
    note: str | None = Field(None, max_length=500)


def pipeline_router(agent: EdgeAgent) -> APIRouter:
    """Leads, the board by stage and opportunities, from the replica (the caller adds the
    local-token check)."""
    router = APIRouter(prefix="/api/crm", tags=["pipeline"])
    q = agent.replica.query

    @router.get("/leads")
    async def leads(stage: LeadStage | None = None, limit: Limit = 50, offset: Offset = 0
                    ) -> list[Row]:
        """Leads with their client's name, the warmest first."""
        return await q(
            "SELECT l.*, p.full_name AS person_name FROM temp.crm_leads l LEFT JOIN "
            "temp.crm_people p ON p.id = l.person_id WHERE NOT l.deleted AND (? IS NULL OR "
            "l.stage = ?) ORDER BY l.last_qd IS NULL, l.last_qd DESC, l.id LIMIT ? OFFSET ?",
            (stage, stage, limit, offset))

    @router.get("/kanban")
    async def kanban(limit: Limit = 50) -> dict[str, Any]:
        """Leads grouped by stage: each column's count and first cards."""
        counts = {r["stage"]: r["n"] for r in await q(
            "SELECT stage, count(*) AS n FROM temp.crm_leads WHERE NOT deleted GROUP BY stage")}
        return {"columns": {stage.value: {"count": counts.get(stage.value, 0),
                                          "cards": await leads(stage, limit, 0)}
                            for stage in LeadStage}}

    @router.get("/opportunities")
    async def opportunities(stage: OpportunityStage | None = None, limit: Limit = 50,
                            offset: Offset = 0) -> list[Row]:
        return await q(
            "SELECT o.*, p.full_name AS person_name FROM temp.crm_opportunities o LEFT JOIN "
            "temp.crm_people p ON p.id = o.person_id WHERE NOT o.deleted AND (? IS NULL OR "
            "o.stage = ?) ORDER BY o.value IS NULL, o.value DESC, o.id LIMIT ? OFFSET ?",
            (stage, stage, limit, offset))

    return router


def inventory_router(agent: EdgeAgent) -> APIRouter:
    """Projects, towers, units with their holds; holds placed and released offline."""
    router = APIRouter(prefix="/api/inventory", tags=["inventory"])
    q = agent.replica.query

    async def with_holds(units: list[Row]) -> list[Row]:
        if not units:
            return []
        ids = [u["id"] for u in units]
        holds = {h["id"]: h for h in await q(
            f"SELECT * FROM temp.inventory_unit_holds WHERE id IN ({','.join('?' * len(ids))})",
            ids)}
        for hold in holds.values():
            hold["claims"] = _json_list(hold["claims"])
        return [unit_view(u, holds.get(u["id"])) for u in units]

    def unit(unit_id: str) -> Row:
        record = agent.replica.record("units", unit_id)
        if record.deleted:
            raise NotFound(f"no unit {unit_id} on this device")
        return record.model_dump(mode="json")

    def hold(unit_id: str) -> Row | None:
        try:
            return agent.replica.record(HOLDS, unit_id).model_dump(mode="json")
        except NotFound:
            return None

    @router.get("/projects")
    async def projects(limit: Limit = 50, offset: Offset = 0) -> list[Row]:
        return await q("SELECT * FROM temp.inventory_projects WHERE NOT deleted ORDER BY name, "
                       "id LIMIT ? OFFSET ?", (limit, offset))

    @router.get("/towers")
    async def towers(project_id: str | None = None, limit: Limit = 50, offset: Offset = 0
                     ) -> list[Row]:
        return await q("SELECT * FROM temp.inventory_towers WHERE NOT deleted AND (? IS NULL "
                       "OR project_id = ?) ORDER BY project_id, name, id LIMIT ? OFFSET ?",
                       (project_id, project_id, limit, offset))

    @router.get("/properties")
    async def properties(project_id: str | None = None, tower_id: str | None = None,
                         configuration: str | None = None,
                         status: Annotated[str | None, Query(max_length=20)] = None,
                         limit: Limit = 50, offset: Offset = 0) -> list[Row]:
        """Units with their live holds (``status`` filters on the status shown, HELD too)."""
        rows = await q(
            "SELECT * FROM temp.inventory_units WHERE NOT deleted AND (? IS NULL OR "
            "project_id = ?) AND (? IS NULL OR tower_id = ?) AND (? IS NULL OR "
            "configuration = ?) ORDER BY project_id, tower_id, unit_no, id",
            (project_id, project_id, tower_id, tower_id, configuration, configuration))
        shown = [u for u in await with_holds(rows) if status is None or u["status"] == status]
        return shown[offset:offset + limit]

    @router.get("/properties/{property_id}")
    async def property_detail(property_id: str) -> Row:
        out = (await with_holds([unit(property_id)]))[0]
        out["media"] = await media(property_id)
        return out

    @router.get("/properties/{property_id}/media")
    async def media(property_id: str) -> list[Row]:
        unit(property_id)
        return await q("SELECT * FROM temp.inventory_media WHERE unit_id = ? AND NOT deleted "
                       "ORDER BY position, id", (property_id,))

    @router.get("/holds")
    async def holds() -> list[Row]:
        """Holds as this device knows them (its own offline ones included)."""
        rows = await q("SELECT * FROM temp.inventory_unit_holds WHERE holder_id IS NOT NULL "
                       "AND NOT deleted ORDER BY held_at, id")
        for row in rows:
            row["claims"] = _json_list(row["claims"])
        return rows

    @router.post("/properties/{property_id}/hold", status_code=201)
    async def place_hold(property_id: str, body: HoldIn) -> Row:
        """Hold a unit for this device's broker, offline or not; 409 when this device already
        knows of another holder (the hub refuses a hold placed elsewhere meanwhile)."""
        target = unit(property_id)
        values = {"tenant_id": agent.pairing.tenant_id, **place_values(
            target, hold(property_id), agent.pairing.user_id, None, hours=body.hours,
            lead_id=body.lead_id, person_id=body.person_id, note=body.note)}
        await agent.write(HOLDS, property_id, values)
        return (await with_holds([target]))[0]

    @router.delete("/properties/{property_id}/hold")
    async def release_hold(property_id: str) -> Row:
        target = unit(property_id)
        await agent.write(HOLDS, property_id, release_values(hold(property_id)))
        return (await with_holds([target]))[0]

    @router.get("/hold-refusals")
    async def hold_refusals() -> list[Row]:
        """Holds the hub refused (another broker's hold committed first), with its reason."""
        out = []
        for refusal in await agent.replica.refusals():
            if refusal["guid"].startswith(f"{HOLDS}/"):
                unit_id = refusal["guid"].split("/", 1)[1]
                out.append({**refusal, "unit_id": unit_id, "unit_no": _unit_no(unit_id)})
        return out

    def _unit_no(unit_id: str) -> str | None:
        try:
            return str(agent.replica.record("units", unit_id).unit_no)  # type: ignore[attr-defined]
        except NotFound:
            return None

    return router


def _json_list(value: Any) -> list[Any]:
    return list(json.loads(value)) if isinstance(value, str) else list(value or ())
