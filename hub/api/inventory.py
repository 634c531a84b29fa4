"""Inventory on the hub: projects, towers, units ("properties"), their media and holds.

Reads are the projection within the caller's tenant; every write goes through `LocalWriter`
and the policy (inventory is changed by managers; a hold by one broker at a time), so it
reaches every device as a CRDT update like any other.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.errors import NotFound
from core.identity import Principal
from hub.api.crm import Limit, Offset, Row, Values, create_record
from hub.api.deps import HubDep, PrincipalDep
from hub.service import Hub
from hub.storage import projection as proj
from schema.inventory import (
    DEFAULT_HOLD_HOURS,
    HOLDS,
    MAX_HOLD_HOURS,
    place_values,
    release_values,
    unit_view,
)

router = APIRouter(prefix="/api/inventory", tags=["inventory"])
UNITS = "units"


class HoldIn(BaseModel):
    hours: int = Field(DEFAULT_HOLD_HOURS, ge=1, le=MAX_HOLD_HOURS)
    lead_id: str | None = Field(None, max_length=64)
    person_id: str | None = Field(None, max_length=64)
    note: str | None = Field(None, max_length=500)


class MediaIn(BaseModel):
    uri: str = Field(min_length=1, max_length=2000,
                     description="Where the media is (an https URL or an asset reference)")
    kind: str = "image"
    caption: str | None = Field(None, max_length=300)
    position: int = Field(0, ge=0, le=10_000)


async def holds_of(hub: Hub, principal: Principal, unit_ids: list[str]) -> dict[str, Row]:
    """The hold documents of these units, by unit id."""
    if not unit_ids:
        return {}
    rows = await hub.storage.projection.rows(principal, HOLDS, proj.among("id", unit_ids),
                                             limit=len(unit_ids))
    return {r["id"]: r for r in rows}


async def _units(hub: Hub, principal: Principal, rows: list[Row]) -> list[Row]:
    holds = await holds_of(hub, principal, [r["id"] for r in rows])
    return [unit_view(r, holds.get(r["id"])) for r in rows]


@router.get("/projects")
async def projects(principal: PrincipalDep, hub: HubDep, limit: Limit = 50,
                   offset: Offset = 0) -> list[Row]:
    return await hub.storage.projection.rows(principal, "projects", order=proj.BY_NAME,
                                             limit=limit, offset=offset)


@router.post("/projects", status_code=201)
async def create_project(body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    return await create_record(hub, principal, "projects", body.values)


@router.get("/towers")
async def towers(principal: PrincipalDep, hub: HubDep, project_id: str | None = None,
                 limit: Limit = 50, offset: Offset = 0) -> list[Row]:
    return await hub.storage.projection.rows(principal, "towers",
                                             proj.optional_eqs(project_id=project_id),
                                             proj.BY_PROJECT_NAME, limit, offset)


@router.post("/towers", status_code=201)
async def create_tower(body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    return await create_record(hub, principal, "towers", body.values)


@router.get("/properties")
async def properties(principal: PrincipalDep, hub: HubDep, project_id: str | None = None,
                     tower_id: str | None = None, configuration: str | None = None,
                     status: Annotated[str | None, Query(max_length=20)] = None,
                     limit: Limit = 50, offset: Offset = 0) -> list[Row]:
    """Units with their live holds; ``status=HELD`` lists the held ones."""
    rows = await hub.storage.projection.rows(
        principal, UNITS, proj.units(project_id, tower_id, configuration, status), proj.BY_UNIT,
        limit, offset)
    return await _units(hub, principal, rows)


@router.post("/properties", status_code=201)
async def create_property(body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    return unit_view(await create_record(hub, principal, UNITS, body.values), None)


@router.get("/properties/{property_id}")
async def property_detail(property_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    unit = (await _units(hub, principal, [await hub.storage.projection.one(principal, UNITS,
                                                         property_id)]))[0]
    unit["media"] = await _media(hub, principal, property_id)
    return unit


@router.patch("/properties/{property_id}")
async def update_property(property_id: str, body: Values, principal: PrincipalDep,
                          hub: HubDep) -> Row:
    await hub.storage.projection.one(principal, UNITS, property_id)
    values = {k: v for k, v in body.values.items() if k != "tenant_id"}
    committed = await hub.writer.write(principal, UNITS, property_id, values, create=False)
    assert committed.record is not None
    return (await _units(hub, principal, [committed.record.model_dump(mode="json")]))[0]


@router.delete("/properties/{property_id}")
async def archive_property(property_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    """Archive a unit (a tombstone every device receives; a director may restore it)."""
    await hub.storage.projection.one(principal, UNITS, property_id)
    await hub.writer.write(principal, UNITS, property_id, {"deleted": True}, create=False)
    return {"id": property_id, "deleted": True}


async def _media(hub: Hub, principal: Principal, unit_id: str) -> list[Row]:
    return await hub.storage.projection.rows(principal, "unit_media", proj.eq("unit_id", unit_id),
                                             proj.BY_POSITION)


@router.post("/properties/{property_id}/media", status_code=201)
async def attach_media(property_id: str, body: MediaIn, principal: PrincipalDep,
                       hub: HubDep) -> Row:
    unit = await hub.storage.projection.one(principal, UNITS, property_id)
    return await create_record(hub, principal, "unit_media", {
        **body.model_dump(), "unit_id": property_id, "project_id": unit["project_id"]})


@router.get("/properties/{property_id}/media")
async def media(property_id: str, principal: PrincipalDep, hub: HubDep) -> list[Row]:
    await hub.storage.projection.one(principal, UNITS, property_id)
    return await _media(hub, principal, property_id)


@router.delete("/media/{media_asset_id}")
async def remove_media(media_asset_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    await hub.storage.projection.one(principal, "unit_media", media_asset_id)
    await hub.writer.write(principal, "unit_media", media_asset_id, {"deleted": True},
                           create=False)
    return {"id": media_asset_id, "deleted": True}


@router.get("/holds")
async def holds(principal: PrincipalDep, hub: HubDep, holder_id: str | None = None,
                limit: Limit = 50, offset: Offset = 0) -> list[Row]:
    """Live holds (released and expired ones are not listed)."""
    return await hub.storage.projection.rows(principal, HOLDS, proj.live_holds(holder_id),
                                             proj.BY_HELD, limit, offset)


async def _hold(hub: Hub, principal: Principal, unit_id: str) -> Row | None:
    return (await holds_of(hub, principal, [unit_id])).get(unit_id)


@router.post("/properties/{property_id}/hold", status_code=201)
async def place_hold(property_id: str, body: HoldIn, principal: PrincipalDep,
                     hub: HubDep) -> Row:
    """Hold a unit for the caller (409 when someone else holds it or it is not for sale)."""
    unit = await hub.storage.projection.one(principal, UNITS, property_id)
    exists = await _hold(hub, principal, property_id) is not None

    def values(current: dict[str, Any]) -> dict[str, Any]:
        return {"tenant_id": principal.tenant_id, **place_values(
            unit, current if exists else None, principal.user_id, principal.team_id,
            hours=body.hours, lead_id=body.lead_id, person_id=body.person_id, note=body.note)}

    await hub.writer.write(principal, HOLDS, property_id, values, create=not exists)
    return (await _units(hub, principal, [unit]))[0]


@router.delete("/properties/{property_id}/hold")
async def release_hold(property_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    """Release a unit's hold (its holder, their senior or a manager)."""
    unit = await hub.storage.projection.one(principal, UNITS, property_id)
    if await _hold(hub, principal, property_id) is None:
        raise NotFound(f"unit {property_id} has never been held")
    await hub.writer.write(principal, HOLDS, property_id, release_values, create=False)
    return (await _units(hub, principal, [unit]))[0]
