"""The CRM REST API over the projection, for the WebOS and integrations.

Reads are SQL on the projection tables, always within the caller's tenant and read scope; a
record outside the scope is a 404. Writes go through `LocalWriter`, so they become CRDT updates
in the log like any device's and reach every edge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.errors import NotFound, RecordInvalid
from core.identity import Principal
from core.ids import new_id
from hub.api.deps import HubDep, PrincipalDep
from hub.scope import row_scope_sql
from hub.service import Hub
from schema import collection

router = APIRouter(prefix="/api/crm", tags=["crm"])
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]
Row = dict[str, Any]
LOCKED_PERSON_FIELDS = frozenset({"owner_id", "team_id", "created_at", "deleted"})
"""Person fields the client data lens never edits: reassignment and deletion are not edits."""


class Values(BaseModel):
    values: dict[str, Any] = Field(description="Field values of the record")


async def read_rows(hub: Hub, principal: Principal, coll_name: str, where: str = "TRUE",
                params: tuple[Any, ...] = (), order: str = "id", limit: int = 200,
                offset: int = 0, columns: str = "*") -> list[Row]:
    """Rows of one projection table in the caller's tenant and scope (SQL built here only)."""
    table = collection(coll_name).table
    scope, scope_params = row_scope_sql(principal, coll_name, "t", len(params) + 4)
    sql = (f"SELECT {columns} FROM {table} t WHERE t.tenant_id = $1 AND NOT t.deleted AND "
           f"({where}) AND {scope} ORDER BY {order} LIMIT $2 OFFSET $3")
    records = await hub.db.pool.fetch(sql, principal.tenant_id, limit, offset, *params,
                                      *scope_params)
    return [dict(r) for r in records]


async def read_one(hub: Hub, principal: Principal, coll_name: str, record_id: str) -> Row:
    rows = await read_rows(hub, principal, coll_name, "t.id = $4", (record_id,), limit=1)
    if not rows:
        raise NotFound(f"no {coll_name} record {record_id}")
    return rows[0]


def _like(text: str) -> str:
    """``text`` as a literal ILIKE pattern fragment (its own % and _ match only themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
    where = ("($4 = '' OR t.full_name ILIKE '%' || $4 || '%' OR t.primary_phone LIKE '%' || $4 "
             "|| '%' OR t.email ILIKE '%' || $4 || '%') AND ($5::text IS NULL OR t.city = $5) "
             "AND ($6::text IS NULL OR t.segment = $6) AND ($7::text IS NULL OR t.owner_id = $7)")
    return await read_rows(hub, principal, "people", where, (_like(q), city, segment, owner_id),
                       "t.full_name, t.id", limit, offset)


@router.post("/contacts", status_code=201)
async def create_contact(body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    return await create_record(hub, principal, "people", body.values)


@router.get("/contacts/{person_id}")
async def contact(person_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    return await read_one(hub, principal, "people", person_id)


@router.get("/client-360/{person_id}")
async def client_360(person_id: str, principal: PrincipalDep, hub: HubDep) -> dict[str, Any]:
    """A person with their leads, opportunities, interactions, open tasks, QD and facts."""
    person = await read_one(hub, principal, "people", person_id)
    by_person = ("t.person_id = $4", (person_id,))
    return {
        "person": person,
        "leads": await read_rows(hub, principal, "leads", *by_person),
        "opportunities": await read_rows(hub, principal, "opportunities", *by_person),
        "interactions": await read_rows(hub, principal, "interactions", *by_person,
                                    order="t.occurred_at DESC", limit=50),
        "tasks": await read_rows(hub, principal, "tasks", "t.person_id = $4 AND t.status = 'OPEN'",
                             (person_id,), order="t.due_at"),
        "qd": await read_rows(hub, principal, "qd_scores", *by_person, order="t.scored_at"),
        "facts": await read_rows(hub, principal, "facts", *by_person),
    }


@router.get("/opportunities")
async def opportunities(principal: PrincipalDep, hub: HubDep, stage: str | None = None,
                        owner_id: str | None = None, limit: Limit = 50, offset: Offset = 0
                        ) -> list[Row]:
    where = "($4::text IS NULL OR t.stage = $4) AND ($5::text IS NULL OR t.owner_id = $5)"
    return await read_rows(hub, principal, "opportunities", where, (stage, owner_id),
                       "t.value DESC NULLS LAST, t.id", limit, offset)


@router.get("/tasks")
async def tasks(principal: PrincipalDep, hub: HubDep, status: str | None = None,
                person_id: str | None = None, limit: Limit = 50, offset: Offset = 0
                ) -> list[Row]:
    where = "($4::text IS NULL OR t.status = $4) AND ($5::text IS NULL OR t.person_id = $5)"
    return await read_rows(hub, principal, "tasks", where, (status, person_id),
                       "t.due_at NULLS LAST, t.id", limit, offset)


@router.post("/tasks", status_code=201)
async def create_task(body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    return await create_record(hub, principal, "tasks", body.values)


@router.get("/kanban")
async def kanban(principal: PrincipalDep, hub: HubDep, limit: Limit = 50) -> dict[str, Any]:
    """Leads in scope grouped by stage: counts and the first cards of each column."""
    from schema.models import LeadStage

    columns = {}
    for stage in LeadStage:
        cards = await read_rows(hub, principal, "leads", "t.stage = $4", (stage.value,),
                            "t.last_qd DESC NULLS LAST, t.id", limit)
        count = await read_rows(hub, principal, "leads", "t.stage = $4", (stage.value,),
                            "1", 1, 0, "count(*) AS n")
        columns[stage.value] = {"count": count[0]["n"] if count else 0, "cards": cards}
    return {"columns": columns}


@router.get("/qd/{person_id}")
async def qd(person_id: str, principal: PrincipalDep, hub: HubDep) -> list[Row]:
    await read_one(hub, principal, "people", person_id)
    return await read_rows(hub, principal, "qd_scores", "t.person_id = $4", (person_id,),
                       "t.scored_at")


@router.get("/client-data")
async def client_data(principal: PrincipalDep, hub: HubDep, limit: Limit = 50,
                      offset: Offset = 0) -> list[Row]:
    """The client data lens: people with a summary of their leads in scope."""
    people = await read_rows(hub, principal, "people", order="t.full_name, t.id", limit=limit,
                         offset=offset)
    for person in people:
        leads = await read_rows(hub, principal, "leads", "t.person_id = $4", (person["id"],))
        person["leads"] = [{"id": ld["id"], "stage": ld["stage"], "last_qd": ld["last_qd"]}
                           for ld in leads]
    return people


@router.get("/client-data/{person_id}")
async def client_data_one(person_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    return await read_one(hub, principal, "people", person_id)


@router.patch("/client-data/{person_id}")
async def update_client(person_id: str, body: Values, principal: PrincipalDep, hub: HubDep
                        ) -> Row:
    """Edit a person's own fields (who may: `hub.policy.check_write`, as for every write)."""
    await read_one(hub, principal, "people", person_id)
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
    await read_one(hub, principal, "people", person_id)
    events: list[Row] = []
    for row in await read_rows(hub, principal, "interactions", "t.person_id = $4", (person_id,)):
        events.append({"at": row["occurred_at"], "type": row["kind"], "summary": row["summary"],
                       "id": row["id"]})
    leads = await read_rows(hub, principal, "leads", "t.person_id = $4", (person_id,))
    for lead in leads:
        for row in await read_rows(hub, principal, "stage_history", "t.lead_id = $4",
                                   (lead["id"],)):
            events.append({"at": row["changed_at"], "type": "stage",
                           "summary": f"{row['from_stage'] or '—'} → {row['to_stage']}",
                           "id": row["id"]})
    for row in await read_rows(hub, principal, "tasks", "t.person_id = $4", (person_id,)):
        if row["due_at"] is not None:
            events.append({"at": row["due_at"], "type": "task", "summary": row["title"],
                           "id": row["id"]})
    return sorted(events, key=lambda e: e["at"], reverse=True)


@router.post("/client-data/{person_id}/tasks", status_code=201)
async def create_client_task(person_id: str, body: Values, principal: PrincipalDep, hub: HubDep
                             ) -> Row:
    """A task for this client (``person_id`` is taken from the path)."""
    await read_one(hub, principal, "people", person_id)
    return await create_record(hub, principal, "tasks", {**body.values, "person_id": person_id})


@router.get("/client-data/{person_id}/tasks")
async def client_tasks(person_id: str, principal: PrincipalDep, hub: HubDep) -> list[Row]:
    await read_one(hub, principal, "people", person_id)
    return await read_rows(hub, principal, "tasks", "t.person_id = $4", (person_id,),
                       "t.due_at NULLS LAST")
