"""Oracle canvas pages on the device's local API: list, read and edit offline.

Edits are local CRDT changes like any other (durable at once, merged on reconnect); the hub
judges them by the page's sharing when they arrive, and a refused one comes back as a refusal
the person sees in `/status`. Component edits are made on the page as it stands when written,
so changes pulled meanwhile are kept.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.errors import NotFound
from core.ids import new_id
from edge_agent.service import EdgeAgent
from schema import canvas

CANVAS = "canvas_pages"
PREFIX = "/api/oracle/v1/canvas-pages"


class PageValues(BaseModel):
    values: dict[str, Any] = Field(description="Page fields: title, narrative, components, "
                                   "sharing, editors, viewers")


class Placement(BaseModel):
    after: str | None = Field(None, description="The component to follow; none: the end")
    first: bool = False


class NewComponent(Placement):
    component: dict[str, Any]


class ComponentValues(BaseModel):
    values: dict[str, Any]


def canvas_router(agent: EdgeAgent) -> APIRouter:
    """The canvas routes, served from the device's replica (the caller adds the local-token
    check)."""
    router = APIRouter(prefix=PREFIX, tags=["oracle"])

    def page(page_id: str) -> dict[str, Any]:
        record = agent.replica.record(CANVAS, page_id)
        if record.deleted:
            raise NotFound(f"no canvas page {page_id} on this device")
        return record.model_dump(mode="json")

    async def edit_components(page_id: str, edit: Any) -> dict[str, Any]:
        page(page_id)
        record = await agent.write(
            CANVAS, page_id, lambda content: {"components": edit(content["components"])})
        return record.model_dump(mode="json")

    @router.get("")
    async def list_pages(limit: Annotated[int, Query(ge=1, le=200)] = 50,
                         offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        return await agent.replica.query(
            "SELECT id, title, owner_id, team_id, sharing, created_at, "
            "json_array_length(components) AS component_count FROM temp.oracle_canvas_pages "
            "WHERE NOT deleted ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (limit, offset))

    @router.get("/{page_id}")
    async def get_page(page_id: str) -> dict[str, Any]:
        return page(page_id)

    @router.post("", status_code=201)
    async def create_page(body: PageValues) -> dict[str, Any]:
        record = await agent.write(CANVAS, None, body.values)
        return record.model_dump(mode="json")

    @router.patch("/{page_id}")
    async def update_page(page_id: str, body: PageValues) -> dict[str, Any]:
        page(page_id)
        record = await agent.write(CANVAS, page_id, body.values)
        return record.model_dump(mode="json")

    @router.post("/{page_id}/components", status_code=201)
    async def add_component(page_id: str, body: NewComponent) -> dict[str, Any]:
        component = {**body.component, "id": body.component.get("id") or new_id()}
        return await edit_components(
            page_id, lambda cs: canvas.add(cs, component, body.after, first=body.first))

    @router.patch("/{page_id}/components/{component_id}")
    async def update_component(page_id: str, component_id: str, body: ComponentValues
                               ) -> dict[str, Any]:
        return await edit_components(
            page_id, lambda cs: canvas.update(cs, component_id, body.values))

    @router.delete("/{page_id}/components/{component_id}")
    async def delete_component(page_id: str, component_id: str) -> dict[str, Any]:
        return await edit_components(page_id, lambda cs: canvas.remove(cs, component_id))

    @router.post("/{page_id}/components/{component_id}/move")
    async def move_component(page_id: str, component_id: str, body: Placement
                             ) -> dict[str, Any]:
        return await edit_components(
            page_id, lambda cs: canvas.move(cs, component_id, body.after, first=body.first))

    return router
