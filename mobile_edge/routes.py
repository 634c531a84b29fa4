"""The `/api/mobile-edge/*` routes, written once over a `MobileStore`: the hub serves them on
PostgreSQL, each edge agent from its replica (so they answer offline, and a change made there
syncs like any other)."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from core.errors import Conflict, RecordInvalid
from core.ids import new_id
from mobile_edge.alerts import active_alerts
from mobile_edge.inputs import (
    CalendarIn,
    CalendarPatch,
    DecisionIn,
    EventIn,
    FactIn,
    HeartbeatIn,
    ImportIn,
    NoteIn,
    utc,
)
from mobile_edge.store import Cond, MobileStore, NewRecord, Row
from schema.models import CalendarStatus, CommChannel, EventSource, InsightStatus

PREFIX = "/api/mobile-edge"
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
LeadId = Annotated[str, Query(min_length=1, max_length=64)]
SUMMARY_CHARS = 120


def _now() -> datetime:
    return datetime.now(UTC)


def _attached(store: MobileStore, lead: Row) -> Row:
    """Fields every record about a lead carries: it lives in the lead's owner's scope, so the
    lead's broker (and their senior) see what anyone in scope recorded."""
    return {"tenant_id": store.tenant_id, "owner_id": lead["owner_id"],
            "team_id": lead["team_id"], "lead_id": lead["id"],
            "created_at": _now().isoformat()}


def _event(store: MobileStore, lead: Row, values: Row) -> NewRecord:
    return ("comm_events", new_id(), {**_attached(store, lead), "person_id": lead["person_id"],
                                      **values})


def _facts(store: MobileStore, lead: Row, event_id: str, facts: list[FactIn]
           ) -> list[NewRecord]:
    return [("memory_facts", new_id(), {**_attached(store, lead), "person_id": lead["person_id"],
                                        "event_id": event_id, **fact.model_dump(mode="json")})
            for fact in facts]


def mobile_edge_router(store_dep: Callable[..., Awaitable[MobileStore]]) -> APIRouter:
    """The routes; ``store_dep`` is the dependency giving the caller's store (it also checks
    who the caller is)."""
    router = APIRouter(prefix=PREFIX, tags=["mobile-edge"])
    # Routes of this factory resolve their annotations here (no postponed evaluation in this
    # module), so the store dependency can be the caller's.
    Store = Annotated[MobileStore, Depends(store_dep)]

    @router.get("/events")
    async def list_events(store: Store, lead_id: LeadId, limit: Limit = 100,
                          offset: Offset = 0) -> list[Row]:
        """A lead's communication events, newest first."""
        await store.get("leads", lead_id)
        return await store.select("comm_events", [("lead_id", "=", lead_id)], "-occurred_at",
                                  limit=limit, offset=offset)

    @router.post("/events", status_code=201)
    async def log_event(body: EventIn, store: Store) -> Row:
        lead = await store.get("leads", body.lead_id)
        values = body.model_dump(mode="json", exclude={"lead_id"})
        values["occurred_at"] = values["occurred_at"] or _now().isoformat()
        (event,) = await store.create([_event(store, lead, values)])
        return event

    @router.get("/memory")
    async def list_memory(store: Store, lead_id: LeadId, limit: Limit = 200,
                          offset: Offset = 0) -> list[Row]:
        """What is remembered about a lead, oldest first."""
        await store.get("leads", lead_id)
        return await store.select("memory_facts", [("lead_id", "=", lead_id)], "created_at",
                                  limit=limit, offset=offset)

    @router.post("/imports", status_code=201)
    async def import_event(body: ImportIn, store: Store) -> Row:
        """A recording (its transcript) or a note, imported by an operator: the event, its
        transcript segments and its memory facts are written together."""
        lead = await store.get("leads", body.lead_id)
        opening = body.text or (body.transcript[0].text if body.transcript else "")
        event = _event(store, lead, {
            "channel": (CommChannel.NOTE if body.kind == "note" else body.channel).value,
            "occurred_at": body.occurred_at.isoformat(), "duration_s": body.duration_s,
            "source": EventSource.IMPORT.value, "recording_ref": body.recording_ref,
            "summary": body.summary or opening[:SUMMARY_CHARS] or None, "body": body.text})
        event_id = event[1]
        segments: list[NewRecord] = [
            ("transcript_segments", new_id(), {**_attached(store, lead), "event_id": event_id,
                                               "position": i, **seg.model_dump(mode="json")})
            for i, seg in enumerate(body.transcript)]
        created = await store.create([event, *segments,
                                      *_facts(store, lead, event_id, body.facts)])
        return {**created[0], "segments": len(segments),
                "facts": [r["id"] for r in created[1 + len(segments):]]}

    @router.post("/notes", status_code=201)
    async def quick_note(body: NoteIn, store: Store) -> Row:
        """A quick note on a lead (an event of channel ``note``), with any facts it states."""
        lead = await store.get("leads", body.lead_id)
        event = _event(store, lead, {
            "channel": CommChannel.NOTE.value, "source": EventSource.NOTE.value,
            "occurred_at": _now().isoformat(), "summary": body.text[:SUMMARY_CHARS],
            "body": body.text})
        created = await store.create([event, *_facts(store, lead, event[1], body.facts)])
        return {**created[0], "facts": [r["id"] for r in created[1:]]}

    @router.get("/calendar")
    async def calendar(store: Store, start: datetime | None = None, end: datetime | None = None,
                       include_cancelled: bool = False, limit: Limit = 200) -> list[Row]:
        """The caller's own appointments starting in [start, end), soonest first."""
        where: list[Cond] = [("owner_id", "=", store.user_id)]
        if start is not None:
            where.append(("starts_at", ">=", utc(start)))
        if end is not None:
            where.append(("starts_at", "<", utc(end)))
        if not include_cancelled:
            where.append(("status", "!=", CalendarStatus.CANCELLED.value))
        return await store.select("calendar_events", where, "starts_at", limit=limit)

    @router.post("/calendar", status_code=201)
    async def create_appointment(body: CalendarIn, store: Store) -> Row:
        """A new appointment of the caller's; one about a lead is also in the lead's team (so
        the senior broker sees it), and names the lead's client."""
        scope: Row = {"team_id": None, "person_id": None}
        if body.lead_id is not None:
            lead = await store.get("leads", body.lead_id)
            scope = {"team_id": lead["team_id"], "person_id": lead["person_id"]}
        (event,) = await store.create([("calendar_events", new_id(), {
            "tenant_id": store.tenant_id, "owner_id": store.user_id,
            "created_at": _now().isoformat(), "status": CalendarStatus.SCHEDULED.value,
            **scope, **body.model_dump(mode="json")})])
        return event

    @router.patch("/calendar/{calendar_event_id}")
    async def update_appointment(calendar_event_id: str, body: CalendarPatch, store: Store
                                 ) -> Row:
        """Change the fields sent, and only those: an offline edit of the time on one device
        and of the place on another both survive."""
        await store.get("calendar_events", calendar_event_id)
        values = body.model_dump(mode="json", exclude_unset=True)
        if not values:
            raise RecordInvalid("nothing to change: send at least one field")
        return await store.change("calendar_events", calendar_event_id, values)

    @router.delete("/calendar/{calendar_event_id}")
    async def cancel_appointment(calendar_event_id: str, store: Store) -> Row:
        """Cancel (the record stays, with status ``cancelled``, so every device learns it)."""
        await store.get("calendar_events", calendar_event_id)
        return await store.change("calendar_events", calendar_event_id,
                                  {"status": CalendarStatus.CANCELLED.value})

    @router.get("/transcripts/{event_id}")
    async def transcript(event_id: str, store: Store) -> list[Row]:
        """An event's transcript segments in order."""
        await store.get("comm_events", event_id)
        return await store.select("transcript_segments", [("event_id", "=", event_id)],
                                  "position", limit=5000)

    @router.get("/insights/{lead_id}")
    async def insights(lead_id: str, store: Store, include_decided: bool = False
                       ) -> list[Row]:
        """A lead's recommendations, most urgent first (open ones only, unless asked)."""
        await store.get("leads", lead_id)
        where: list[Cond] = [("lead_id", "=", lead_id)]
        if not include_decided:
            where.append(("status", "=", InsightStatus.OPEN.value))
        return await store.select("insights", where, "priority")

    @router.post("/insights/{recommendation_id}/act")
    async def decide(recommendation_id: str, body: DecisionIn, store: Store) -> Row:
        """Act on or dismiss a recommendation, once: a decided one answers 409 with the
        decision that stands (and a decision made offline that lost the race is refused by
        the hub when it arrives)."""
        insight = await store.get("insights", recommendation_id)
        if insight["status"] != InsightStatus.OPEN.value:
            raise Conflict(f"this insight was already {insight['status']} by "
                           f"{insight['decided_by']} at {insight['decided_at']}",
                           code="already_decided")
        status = InsightStatus.ACTED if body.action == "act" else InsightStatus.DISMISSED
        return await store.change("insights", recommendation_id, {
            "status": status.value, "decided_by": store.user_id,
            "decided_at": _now().isoformat(), "decision_note": body.note})

    @router.get("/alerts")
    async def alerts(store: Store) -> list[Row]:
        return await active_alerts(store, _now())

    @router.post("/session")
    async def session(body: HeartbeatIn, store: Store) -> Row:
        """A surface's heartbeat (kept where it arrives, never synced: presence, not data)."""
        return await store.heartbeat(body)

    return router

