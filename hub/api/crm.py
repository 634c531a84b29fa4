"""The CRM REST API over the projection, for the WebOS and integrations.

Reads are the projection tables through `hub.storage.projection`, always within the caller's
tenant and read scope; a record outside the scope is a 404. Writes go through `LocalWriter`, so
they become CRDT updates in the log like any device's and reach every edge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.errors import RecordInvalid
from core.identity import Principal
from core.ids import new_id
from hub.api.deps import HubDep, PrincipalDep
from hub.service import Hub
from hub.storage import projection as proj

router = APIRouter(prefix="/api/crm", tags=["crm"])
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]
Row = dict[str, Any]
LOCKED_PERSON_FIELDS = frozenset({"owner_id", "team_id", "created_at", "deleted"})
"""Person fields the client data lens never edits: reassignment and deletion are not edits."""


class Values(BaseModel):
    values: dict[str, Any] = Field(description="Field values of the record")


async def create_record(hub: Hub, principal: Principal, coll_name: str,
                        values: dict[str, Any], record_id: str | None = None) -> Row:
    """A new record owned by the caller (unless ``values`` names another owner), in the
    caller's tenant, written through `LocalWriter`."""
    values = {"owner_id": principal.user_id, "team_id": principal.team_id,
              "created_at": datetime.now(UTC).isoformat(), **values,
              "tenant_id": principal.tenant_id}
    committed = await hub.writer.write(principal, coll_name, record_id or new_id(), values,
                                       create=True)
    assert committed.record is not None
    return committed.record.model_dump(mode="json")


@router.get("/contacts")
async def contacts(principal: PrincipalDep, hub: HubDep, q: str = "", city: str | None = None,
                   segment: str | None = None, owner_id: str | None = None,
                   limit: Limit = 50, offset: Offset = 0) -> list[Row]:
    """People, filtered by a search text (name, phone, email), city, segment or owner."""
    return await hub.storage.projection.rows(principal, "people",
                                             proj.contacts(q, city, segment, owner_id),
                                             proj.BY_FULL_NAME, limit, offset)


@router.post("/contacts", status_code=201)
async def create_contact(body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    return await create_record(hub, principal, "people", body.values)


@router.get("/contacts/{person_id}")
async def contact(person_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    return await hub.storage.projection.one(principal, "people", person_id)


@router.get("/client-360/{person_id}")
async def client_360(person_id: str, principal: PrincipalDep, hub: HubDep) -> dict[str, Any]:
    """A person with their leads, opportunities, interactions, open tasks, QD and facts."""
    person = await hub.storage.projection.one(principal, "people", person_id)
    rows, by_person = hub.storage.projection.rows, proj.eq("person_id", person_id)
    return {
        "person": person,
        "leads": await rows(principal, "leads", by_person),
        "opportunities": await rows(principal, "opportunities", by_person),
        "interactions": await rows(principal, "interactions", by_person, proj.BY_OCCURRED_NEWEST,
                                   limit=50),
        "tasks": await rows(principal, "tasks", proj.open_tasks_of(person_id), proj.BY_DUE),
        "qd": await rows(principal, "qd_scores", by_person, proj.BY_SCORED),
        "facts": await rows(principal, "facts", by_person),
    }


@router.get("/opportunities")
async def opportunities(principal: PrincipalDep, hub: HubDep, stage: str | None = None,
                        owner_id: str | None = None, limit: Limit = 50, offset: Offset = 0
                        ) -> list[Row]:
    return await hub.storage.projection.rows(
        principal, "opportunities", proj.optional_eqs(stage=stage, owner_id=owner_id),
        proj.BY_VALUE, limit, offset)


@router.get("/tasks")
async def tasks(principal: PrincipalDep, hub: HubDep, status: str | None = None,
                person_id: str | None = None, limit: Limit = 50, offset: Offset = 0
                ) -> list[Row]:
    return await hub.storage.projection.rows(
        principal, "tasks", proj.optional_eqs(status=status, person_id=person_id),
        proj.BY_DUE_THEN_ID, limit, offset)


@router.post("/tasks", status_code=201)
async def create_task(body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    return await create_record(hub, principal, "tasks", body.values)


@router.get("/kanban")
async def kanban(principal: PrincipalDep, hub: HubDep, limit: Limit = 50) -> dict[str, Any]:
    """Leads in scope grouped by stage: counts and the first cards of each column."""
    from schema.models import LeadStage

    columns = {}
    for stage in LeadStage:
        in_stage = proj.eq("stage", stage.value)
        cards = await hub.storage.projection.rows(principal, "leads", in_stage, proj.BY_QD, limit)
        count = await hub.storage.projection.count(principal, "leads", in_stage)
        columns[stage.value] = {"count": count, "cards": cards}
    return {"columns": columns}


@router.get("/qd/{person_id}")
async def qd(person_id: str, principal: PrincipalDep, hub: HubDep) -> list[Row]:
    await hub.storage.projection.one(principal, "people", person_id)
    return await hub.storage.projection.rows(principal, "qd_scores",
                                             proj.eq("person_id", person_id), proj.BY_SCORED)


@router.get("/client-data")
async def client_data(principal: PrincipalDep, hub: HubDep, limit: Limit = 50,
                      offset: Offset = 0) -> list[Row]:
    """The client data lens: people with a summary of their leads in scope."""
    people = await hub.storage.projection.rows(principal, "people", order=proj.BY_FULL_NAME,
                                               limit=limit, offset=offset)
    for person in people:
        leads = await hub.storage.projection.rows(principal, "leads",
                                                  proj.eq("person_id", person["id"]))
        person["leads"] = [{"id": ld["id"], "stage": ld["stage"], "last_qd": ld["last_qd"]}
                           for ld in leads]
    return people


@router.get("/client-data/{person_id}")
async def client_data_one(person_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    return await hub.storage.projection.one(principal, "people", person_id)


@router.patch("/client-data/{person_id}")
async def update_client(person_id: str, body: Values, principal: PrincipalDep, hub: HubDep
                        ) -> Row:
    """Edit a person's own fields (who may: `hub.policy.check_write`, as for every write)."""
    await hub.storage.projection.one(principal, "people", person_id)
    locked = sorted(LOCKED_PERSON_FIELDS & set(body.values))
    if locked:
        raise RecordInvalid(f"the client data lens does not edit {locked}",
                            problems=[f"{name}: not editable here" for name in locked])
    values = {k: v for k, v in body.values.items() if k != "tenant_id"}
    committed = await hub.writer.write(principal, "people", person_id, values, create=False)
    assert committed.record is not None
    return committed.record.model_dump(mode="json")


@router.get("/client-data/{person_id}/timeline")
async def timeline(person_id: str, principal: PrincipalDep, hub: HubDep) -> list[Row]:
    """Interactions, stage changes and tasks of a person, newest first."""
    await hub.storage.projection.one(principal, "people", person_id)
    events: list[Row] = []
    rows, by_person = hub.storage.projection.rows, proj.eq("person_id", person_id)
    for row in await rows(principal, "interactions", by_person):
        events.append({"at": row["occurred_at"], "type": row["kind"], "summary": row["summary"],
                       "id": row["id"]})
    for lead in await rows(principal, "leads", by_person):
        for row in await rows(principal, "stage_history", proj.eq("lead_id", lead["id"])):
            events.append({"at": row["changed_at"], "type": "stage",
                           "summary": f"{row['from_stage'] or '—'} → {row['to_stage']}",
                           "id": row["id"]})
    for row in await rows(principal, "tasks", by_person):
        if row["due_at"] is not None:
            events.append({"at": row["due_at"], "type": "task", "summary": row["title"],
                           "id": row["id"]})
    return sorted(events, key=lambda e: e["at"], reverse=True)


@router.post("/client-data/{person_id}/tasks", status_code=201)
async def create_client_task(person_id: str, body: Values, principal: PrincipalDep, hub: HubDep
                             ) -> Row:
    """A task for this client (``person_id`` is taken from the path)."""
    await hub.storage.projection.one(principal, "people", person_id)
    return await create_record(hub, principal, "tasks", {**body.values, "person_id": person_id})


@router.get("/client-data/{person_id}/tasks")
async def client_tasks(person_id: str, principal: PrincipalDep, hub: HubDep) -> list[Row]:
    await hub.storage.projection.one(principal, "people", person_id)
    return await hub.storage.projection.rows(principal, "tasks", proj.eq("person_id", person_id),
                                             proj.BY_DUE_NULLS_LAST)
