"""The Oracle canvas REST API (`/api/oracle/v1`): pages, components, revisions, rollback, forks
and merge requests. The work is `hub.canvas.Canvases`; this module only speaks HTTP."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from hub.api.deps import PrincipalDep
from hub.canvas import Canvases

router = APIRouter(prefix="/api/oracle/v1", tags=["oracle"])
Row = dict[str, Any]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]


def _canvases(request: Request) -> Canvases:
    return Canvases(request.app.state.hub)


class PageValues(BaseModel):
    values: dict[str, Any] = Field(description="Page fields: title, narrative, components, "
                                   "sharing, editors, viewers")


class Placement(BaseModel):
    after: str | None = Field(None, description="The component to follow; none: the end")
    first: bool = Field(False, description="Place first instead")


class NewComponent(Placement):
    component: dict[str, Any] = Field(description="type, title, config, source, data_rows, "
                                      "layout (and optionally id)")


class ComponentValues(BaseModel):
    values: dict[str, Any]


class NewRevision(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class Rollback(BaseModel):
    revision_id: str


class NewFork(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200)


class NewMergeRequest(BaseModel):
    fork_id: str
    title: str = Field(min_length=1, max_length=200)


class Review(BaseModel):
    decision: Literal["approve", "reject"]
    comment: str = Field("", max_length=2000)


@router.post("/canvas-pages", status_code=201)
async def create_page(body: PageValues, principal: PrincipalDep, request: Request) -> Row:
    return await _canvases(request).create(principal, body.values)


@router.get("/canvas-pages")
async def list_pages(principal: PrincipalDep, request: Request, limit: Limit = 50,
                     offset: Offset = 0) -> list[Row]:
    return await _canvases(request).pages(principal, limit, offset)


@router.get("/canvas-pages/{page_id}")
async def get_page(page_id: str, principal: PrincipalDep, request: Request) -> Row:
    return await _canvases(request).page(principal, page_id)


@router.patch("/canvas-pages/{page_id}")
@router.put("/canvas-pages/{page_id}")
async def update_page(page_id: str, body: PageValues, principal: PrincipalDep,
                      request: Request) -> Row:
    return await _canvases(request).update(principal, page_id, body.values)


@router.delete("/canvas-pages/{page_id}", status_code=204)
async def delete_page(page_id: str, principal: PrincipalDep, request: Request) -> Response:
    await _canvases(request).delete(principal, page_id)
    return Response(status_code=204)


@router.post("/canvas-pages/{page_id}/components", status_code=201)
async def add_component(page_id: str, body: NewComponent, principal: PrincipalDep,
                        request: Request) -> Row:
    return await _canvases(request).add_component(principal, page_id, body.component,
                                                  body.after, first=body.first)


@router.patch("/canvas-pages/{page_id}/components/{component_id}")
async def update_component(page_id: str, component_id: str, body: ComponentValues,
                           principal: PrincipalDep, request: Request) -> Row:
    return await _canvases(request).update_component(principal, page_id, component_id,
                                                     body.values)


@router.delete("/canvas-pages/{page_id}/components/{component_id}")
async def delete_component(page_id: str, component_id: str, principal: PrincipalDep,
                           request: Request) -> Row:
    return await _canvases(request).delete_component(principal, page_id, component_id)


@router.post("/canvas-pages/{page_id}/components/{component_id}/move")
async def move_component(page_id: str, component_id: str, body: Placement,
                         principal: PrincipalDep, request: Request) -> Row:
    return await _canvases(request).move_component(principal, page_id, component_id,
                                                   body.after, first=body.first)


@router.get("/canvas-pages/{page_id}/revisions")
async def list_revisions(page_id: str, principal: PrincipalDep, request: Request
                         ) -> list[Row]:
    return await _canvases(request).revisions(principal, page_id)


@router.post("/canvas-pages/{page_id}/revisions", status_code=201)
async def create_revision(page_id: str, body: NewRevision, principal: PrincipalDep,
                          request: Request) -> Row:
    return await _canvases(request).create_revision(principal, page_id, body.name)


@router.get("/canvas-pages/{page_id}/revisions/{revision_id}")
async def get_revision(page_id: str, revision_id: str, principal: PrincipalDep,
                       request: Request) -> Row:
    return await _canvases(request).revision(principal, page_id, revision_id)


@router.post("/canvas-pages/{page_id}/rollback")
async def rollback(page_id: str, body: Rollback, principal: PrincipalDep, request: Request
                   ) -> Row:
    return await _canvases(request).rollback(principal, page_id, body.revision_id)


@router.post("/canvas-pages/{page_id}/forks", status_code=201)
async def fork(page_id: str, body: NewFork, principal: PrincipalDep, request: Request) -> Row:
    return await _canvases(request).fork(principal, page_id, body.title)


@router.get("/canvas-pages/{page_id}/forks")
async def list_forks(page_id: str, principal: PrincipalDep, request: Request) -> list[Row]:
    return await _canvases(request).forks(principal, page_id)


@router.post("/merge-requests", status_code=201)
async def open_merge_request(body: NewMergeRequest, principal: PrincipalDep, request: Request
                             ) -> Row:
    return await _canvases(request).open_merge_request(principal, body.fork_id, body.title)


@router.get("/merge-requests")
async def list_merge_requests(principal: PrincipalDep, request: Request,
                              page_id: str | None = None, status: str | None = None
                              ) -> list[Row]:
    return await _canvases(request).merge_requests(principal, page_id, status)


@router.get("/merge-requests/{mr_id}")
async def get_merge_request(mr_id: str, principal: PrincipalDep, request: Request) -> Row:
    return await _canvases(request).merge_request(principal, mr_id)


@router.post("/merge-requests/{mr_id}/review")
async def review(mr_id: str, body: Review, principal: PrincipalDep, request: Request) -> Row:
    return await _canvases(request).review(principal, mr_id, body.decision == "approve",
                                           body.comment)
