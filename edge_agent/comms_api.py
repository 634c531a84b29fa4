"""Comms on the device's local API: a broker reads conversations and writes messages, notes
and tasks offline. A message is written queued; the hub sends it once it has synced, and the
provider's delivery reports come back to the device as changes of the message."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from comms.phone import normalise
from comms.records import (
    LinkIn,
    MessageIn,
    NoteIn,
    TaskIn,
    ThreadIn,
    note_values,
    outbound_values,
    task_values,
)
from core.errors import Conflict, NotFound, RecordInvalid
from edge_agent.service import EdgeAgent

Row = dict[str, Any]
_LAST = ("(SELECT max(m.occurred_at) FROM temp.comms_messages m WHERE m.thread_id = t.id AND "
         "NOT m.deleted)")


def comms_router(agent: EdgeAgent) -> APIRouter:
    """The comms routes, served from the device's replica (the caller adds the local-token
    check); the same paths as the hub's."""
    router = APIRouter(prefix="/api/comms", tags=["comms"])

    def thread_of(thread_id: str) -> Row:
        record = agent.replica.record("comms_threads", thread_id)
        if record.deleted:
            raise NotFound(f"no conversation {thread_id}")
        return record.model_dump(mode="json")

    @router.get("/threads")
    async def threads(person_id: str | None = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50,
                      offset: Annotated[int, Query(ge=0)] = 0) -> list[Row]:
        return await agent.replica.query(
            f"SELECT t.*, {_LAST} AS last_message_at FROM temp.comms_threads t WHERE NOT "
            "t.deleted AND NOT t.archived AND (? IS NULL OR t.person_id = ?) ORDER BY "
            f"{_LAST} IS NULL, {_LAST} DESC, t.id LIMIT ? OFFSET ?",
            (person_id, person_id, limit, offset))

    @router.post("/threads", status_code=201)
    async def open_thread(body: ThreadIn) -> Row:
        phone = normalise(body.phone)
        if phone is None:
            raise RecordInvalid(f"{body.phone!r} is not a phone number",
                                problems=["phone: 7 to 15 digits, optionally +country"])
        person_id = body.person_id or await _person_with(agent, phone)
        record = await agent.write("comms_threads", None, {
            "channel_id": body.channel_id, "phone": phone, "person_id": person_id,
            "display_name": body.display_name})
        return record.model_dump(mode="json")

    @router.get("/threads/{thread_id}")
    async def thread(thread_id: str) -> Row:
        return thread_of(thread_id)

    @router.get("/threads/{thread_id}/messages")
    async def messages(thread_id: str, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       offset: Annotated[int, Query(ge=0)] = 0) -> list[Row]:
        thread_of(thread_id)
        return await agent.replica.query(
            "SELECT * FROM temp.comms_messages WHERE thread_id = ? AND NOT deleted ORDER BY "
            "occurred_at, id LIMIT ? OFFSET ?", (thread_id, limit, offset))

    @router.post("/threads/{thread_id}/messages", status_code=201)
    async def send(thread_id: str, body: MessageIn) -> Row:
        """Queued here, sent by the hub once this device has synced."""
        values = outbound_values(thread_of(thread_id), agent.pairing.user_id, body.body)
        return (await agent.write("comms_messages", None, values)).model_dump(mode="json")

    @router.post("/threads/{thread_id}/link-person")
    async def link_person(thread_id: str, body: LinkIn) -> Row:
        thread_of(thread_id)
        agent.replica.record("people", body.person_id)  # 404 when this device has no such person
        record = await agent.write("comms_threads", thread_id, {"person_id": body.person_id})
        return record.model_dump(mode="json")

    @router.post("/threads/{thread_id}/notes", status_code=201)
    async def note(thread_id: str, body: NoteIn) -> Row:
        convo = thread_of(thread_id)
        if convo["person_id"] is None:
            raise Conflict("this conversation is not linked to a person: POST "
                           f"/api/comms/threads/{thread_id}/link-person first")
        record = await agent.write("interactions", None, note_values(convo, body))
        return record.model_dump(mode="json")

    @router.post("/threads/{thread_id}/tasks", status_code=201)
    async def task(thread_id: str, body: TaskIn) -> Row:
        record = await agent.write("tasks", None, task_values(thread_of(thread_id), body))
        return record.model_dump(mode="json")

    return router


async def _person_with(agent: EdgeAgent, phone: str) -> str | None:
    """The one person this device holds whose phone normalises to ``phone``."""
    rows = await agent.replica.query(
        "SELECT id, primary_phone FROM temp.crm_people WHERE NOT deleted AND replace(replace("
        "replace(primary_phone, ' ', ''), '-', ''), '.', '') LIKE ?", (f"%{phone[-4:]}",))
    matches = [r["id"] for r in rows if normalise(r["primary_phone"]) == phone]
    return matches[0] if len(matches) == 1 else None
