"""Leads and opportunities for the WebOS: lists with filters and paging, one record with its
context, edits, stage moves (each with its stage history record) and reassignment.

Reads are the caller's scope (`hub.storage.projection`); every write is a CRDT update through
`LocalWriter` judged by `hub.policy.check_write`, as a device's would be, and leaves an audit
entry naming the act. A refusal is a 403 whose ``error`` is the policy's reason code and whose
``detail`` is a sentence the WebOS shows as is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.errors import NotFound, PermissionDenied, RecordInvalid
from core.identity import Principal
from core.ids import new_id
from hub.api.crm import Limit, Offset, Row, Values, kanban
from hub.api.deps import HubDep, PrincipalDep
from hub.service import Hub
from hub.storage import projection as proj
from hub.store import Committed
from hub.store import Values as WriteValues
from schema.models import LeadStage, OpportunityStage

router = APIRouter(prefix="/api", tags=["pipeline"])

LOCKED_FIELDS = frozenset({"id", "tenant_id", "owner_id", "team_id", "created_at", "deleted"})
"""Fields an edit never sets: ownership moves by reassignment, and a record stays where it is."""
CLOSED_OPPORTUNITY = (OpportunityStage.CLOSED_WON.value, OpportunityStage.CLOSED_LOST.value)
NOUN = {"leads": "lead", "opportunities": "opportunity"}
Sort = Annotated[Literal["recent", "qd", "stage"], Query()]


class Page(BaseModel):
    items: list[Row]
    total: int
    limit: int
    offset: int


class StageIn(BaseModel):
    stage: str = Field(min_length=1, max_length=40)


class ReassignIn(BaseModel):
    owner_id: str = Field(min_length=1, max_length=64)
    team_id: str | None = Field(None, max_length=64,
                                description="Default: the new owner's team.")
    opportunities: bool = Field(True, description="Move the lead's open opportunities too.")


async def _page(hub: Hub, principal: Principal, coll_name: str, where: proj.Filter,
                order: proj.Order, limit: int, offset: int) -> Page:
    items = await hub.storage.projection.rows(principal, coll_name, where, order, limit, offset)
    total = await hub.storage.projection.count(principal, coll_name, where)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/leads")
async def leads(principal: PrincipalDep, hub: HubDep, stage: LeadStage | None = None,
                owner_id: str | None = None, person_id: str | None = None,
                source: str | None = None, project_id: str | None = None,
                q: Annotated[str, Query(max_length=100)] = "",
                min_qd: Annotated[int | None, Query(ge=1, le=100)] = None,
                sort: Sort = "recent", limit: Limit = 50, offset: Offset = 0) -> Page:
    """Leads in the caller's scope; ``q`` searches the client's name and the lead's notes."""
    where = proj.leads(stage.value if stage else None, owner_id, person_id, source, project_id,
                       min_qd, q)
    return await _page(hub, principal, "leads", where, proj.LEAD_ORDER[sort], limit, offset)


@router.get("/leads/{lead_id}")
async def lead(lead_id: str, principal: PrincipalDep, hub: HubDep) -> dict[str, Any]:
    """A lead with its client, its opportunities and its stage history (oldest first)."""
    rows = hub.storage.projection.rows
    found = await hub.storage.projection.one(principal, "leads", lead_id)
    people = await rows(principal, "people", proj.eq("id", found["person_id"]), limit=1)
    return {
        "lead": found,
        "person": people[0] if people else None,
        "opportunities": await rows(principal, "opportunities", proj.eq("lead_id", lead_id)),
        "stage_history": await rows(principal, "stage_history", proj.eq("lead_id", lead_id),
                                    proj.BY_CHANGED),
    }


@router.patch("/leads/{lead_id}")
async def edit_lead(lead_id: str, body: Values, principal: PrincipalDep, hub: HubDep) -> Row:
    """Edit a lead's fields; a new ``stage`` is a stage move (its history record too)."""
    return await _edit(hub, principal, "leads", lead_id, body.values)


@router.post("/leads/{lead_id}/stage")
async def move_lead(lead_id: str, body: StageIn, principal: PrincipalDep, hub: HubDep) -> Row:
    """Move a lead to a stage its role may set (`hub.policy.check_lead_stage`)."""
    _stage_of(LeadStage, body.stage)
    return await _edit(hub, principal, "leads", lead_id, {"stage": body.stage})


@router.post("/leads/{lead_id}/reassign")
async def reassign_lead(lead_id: str, body: ReassignIn, principal: PrincipalDep, hub: HubDep
                        ) -> dict[str, Any]:
    """Give a lead (and its open opportunities) to another user of the tenant: SALES_DIRECTOR
    and ADMIN only, as every change of owner or team (`hub.policy.check_write`)."""
    found = await hub.storage.projection.one(principal, "leads", lead_id)
    try:
        new_owner = await hub.accounts.user(principal.tenant_id, body.owner_id)
    except NotFound:
        raise RecordInvalid(f"no active user {body.owner_id} in this tenant",
                            problems=["owner_id: no such active user"]) from None
    team = body.team_id if body.team_id is not None else new_owner.team_id
    moved = {"owner_id": new_owner.user_id, "team_id": team}
    writes: list[tuple[str, str, WriteValues]] = [("leads", lead_id, moved)]
    if body.opportunities:
        opportunities = await hub.storage.projection.rows(
            principal, "opportunities", proj.open_opportunities_of(lead_id, CLOSED_OPPORTUNITY))
        writes += [("opportunities", o["id"], moved) for o in opportunities]
    committed = await _guarded(hub, principal, "lead.reassign", f"leads/{lead_id}",
                               writes, create=False)
    await hub.storage.audit.record(
        principal.tenant_id, "lead.reassign", user_id=principal.user_id,
        guid=f"leads/{lead_id}", seq=committed[0].seq, target=new_owner.user_id, detail={
            "from": {"owner_id": found["owner_id"], "team_id": found["team_id"]},
            "to": moved, "opportunities": [w[1] for w in writes[1:]]})
    return {"lead": _json(committed[0]),
            "opportunities": [_json(c) for c in committed[1:]]}


@router.get("/opportunities")
async def opportunities(principal: PrincipalDep, hub: HubDep,
                        stage: OpportunityStage | None = None, owner_id: str | None = None,
                        lead_id: str | None = None, person_id: str | None = None,
                        limit: Limit = 50, offset: Offset = 0) -> Page:
    where = proj.optional_eqs(stage=stage.value if stage else None, owner_id=owner_id,
                              lead_id=lead_id, person_id=person_id)
    return await _page(hub, principal, "opportunities", where, proj.BY_VALUE, limit, offset)


@router.get("/opportunities/{opportunity_id}")
async def opportunity(opportunity_id: str, principal: PrincipalDep, hub: HubDep
                      ) -> dict[str, Any]:
    """An opportunity with its stage history (oldest first)."""
    found = await hub.storage.projection.one(principal, "opportunities", opportunity_id)
    return {"opportunity": found,
            "stage_history": await hub.storage.projection.rows(
                principal, "stage_history", proj.eq("opportunity_id", opportunity_id),
                proj.BY_CHANGED)}


@router.patch("/opportunities/{opportunity_id}")
async def edit_opportunity(opportunity_id: str, body: Values, principal: PrincipalDep,
                           hub: HubDep) -> Row:
    """Edit an opportunity; its stage, value and probability are SALES_DIRECTOR and ADMIN
    fields (a new stage also writes its history record)."""
    return await _edit(hub, principal, "opportunities", opportunity_id, body.values)


@router.post("/opportunities/{opportunity_id}/stage")
async def move_opportunity(opportunity_id: str, body: StageIn, principal: PrincipalDep,
                           hub: HubDep) -> Row:
    _stage_of(OpportunityStage, body.stage)
    return await _edit(hub, principal, "opportunities", opportunity_id, {"stage": body.stage})


@router.get("/kanban/board")
async def kanban_board(principal: PrincipalDep, hub: HubDep, limit: Limit = 50
                       ) -> dict[str, Any]:
    """The lead board by stage (the same as ``/api/crm/kanban``)."""
    return await kanban(principal, hub, limit)


# --- writing ------------------------------------------------------------------------------------

def _stage_of(stages: type[LeadStage] | type[OpportunityStage], value: str) -> None:
    if value not in {s.value for s in stages}:
        raise RecordInvalid(f"{value!r} is not a stage; one of {[s.value for s in stages]}",
                            problems=["stage: unknown stage"])


async def _edit(hub: Hub, principal: Principal, coll_name: str, record_id: str,
                values: dict[str, Any]) -> Row:
    """Write ``values`` to an existing lead or opportunity in the caller's scope; when the stage
    changes, the stage history record is written in the same transaction."""
    locked = sorted(LOCKED_FIELDS & set(values))
    if locked:
        raise RecordInvalid(
            f"{locked} are not edited here"
            + (f"; POST /api/leads/{record_id}/reassign moves a lead" if coll_name == "leads"
               else ""), problems=[f"{name}: not editable here" for name in locked])
    if not values:
        raise RecordInvalid("nothing to change", problems=["values: empty"])
    noun, guid = NOUN[coll_name], f"{coll_name}/{record_id}"
    current = await hub.storage.projection.one(principal, coll_name, record_id)
    new_stage = values.get("stage")
    if new_stage is None or new_stage == current["stage"]:
        (committed,) = await _guarded(hub, principal, f"{noun}.edit", guid,
                                      [(coll_name, record_id, values)], create=False)
        await hub.storage.audit.record(principal.tenant_id, f"{noun}.edit",
                                       user_id=principal.user_id, guid=guid, seq=committed.seq,
                                       detail={"fields": sorted(values)})
        return _json(committed)
    before: dict[str, Any] = {}

    def change(content: dict[str, Any]) -> dict[str, Any]:
        before["stage"] = content.get("stage")  # read under the document's lock
        return values

    def history(_content: dict[str, Any]) -> dict[str, Any]:
        link = ({"lead_id": record_id} if coll_name == "leads" else
                {"opportunity_id": record_id, "lead_id": current.get("lead_id")})
        return {**link, "tenant_id": principal.tenant_id, "owner_id": principal.user_id,
                "team_id": principal.team_id, "from_stage": before.get("stage"),
                "to_stage": new_stage, "changed_by": principal.user_id,
                "changed_at": datetime.now(UTC).isoformat(),
                "created_at": datetime.now(UTC).isoformat()}

    history_id = new_id()
    committed, _ = await _guarded(
        hub, principal, f"{noun}.stage", guid,
        [(coll_name, record_id, change), ("stage_history", history_id, history)],
        create=[False, True])
    await hub.storage.audit.record(
        principal.tenant_id, f"{noun}.stage", user_id=principal.user_id, guid=guid,
        seq=committed.seq, detail={"from": before.get("stage"), "to": new_stage,
                                   "stage_history": history_id, "fields": sorted(values)})
    return _json(committed)


async def _guarded(hub: Hub, principal: Principal, action: str, guid: str,
                   writes: list[tuple[str, str, WriteValues]], *,
                   create: bool | list[bool]) -> list[Committed]:
    """`LocalWriter.write_many`; a refusal by the policy is audited before it is raised."""
    try:
        return await hub.writer.write_many(principal, writes, create=create)
    except PermissionDenied as refusal:
        await hub.storage.audit.record(principal.tenant_id, f"{action}.refused",
                                       user_id=principal.user_id, guid=guid,
                                       detail={"reason": refusal.code, "message": refusal.message})
        raise


def _json(committed: Committed) -> Row:
    assert committed.record is not None
    record: Row = committed.record.model_dump(mode="json")
    return record
