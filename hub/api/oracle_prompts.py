"""`POST /api/oracle/v1/canvas-pages/{page_id}/prompts`: ask the Oracle and keep the answer on
the page as a component with its rows (a CRDT edit like any other, so it syncs and revisions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from core.ids import new_id
from hub.api.deps import HubDep, PrincipalDep
from hub.canvas import Canvases
from hub.policy import Access

router = APIRouter(prefix="/api/oracle/v1", tags=["oracle"])


class Prompt(BaseModel):
    prompt: str = Field(min_length=1, max_length=2000)
    after: str | None = Field(None, description="The component to follow; none: the end")


@router.post("/canvas-pages/{page_id}/prompts", status_code=201)
async def prompt(page_id: str, body: Prompt, principal: PrincipalDep,
                 hub: HubDep) -> dict[str, Any]:
    canvases = Canvases(hub)
    await canvases.page(principal, page_id, Access.EDIT)
    answer = await hub.gpu.oracle.ask(principal, body.prompt)
    component = {**answer.as_component(), "id": new_id()}
    page = await canvases.add_component(principal, page_id, component, body.after)
    return {"answer": answer.model_dump(mode="json", exclude={"rows"}),
            "component": next(c for c in page["components"] if c["id"] == component["id"]),
            "page": page}
