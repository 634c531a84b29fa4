"""Comms on the hub: conversations and messages (reads on the projection, writes through
`LocalWriter` like every REST write), the providers' webhooks and the channel settings."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

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
from comms.registry import PROVIDERS, provider_for
from core.errors import AuthError, Conflict, NotFound, RecordInvalid
from core.identity import Principal
from hub.api.crm import create_record
from hub.api.deps import AdminDep, HubDep, ManagerDep, PrincipalDep
from hub.comms_ingest import find_person
from hub.service import Hub
from hub.storage import projection as proj
from hub.storage.comms_channels import ChannelIn

router = APIRouter(prefix="/api/comms", tags=["comms"])
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]
Row = dict[str, Any]
MAX_WEBHOOK_BYTES = 1 << 20


@router.get("/threads")
async def threads(principal: PrincipalDep, hub: HubDep, person_id: str | None = None,
                  archived: bool = False, limit: Limit = 50, offset: Offset = 0) -> list[Row]:
    """Conversations in scope, the most recent first."""
    return await hub.storage.projection.rows(
        principal, "comms_threads", proj.threads(person_id, archived), proj.BY_LAST_MESSAGE,
        limit, offset, proj.THREAD_COLUMNS)


@router.post("/threads", status_code=201)
async def open_thread(body: ThreadIn, principal: PrincipalDep, hub: HubDep) -> Row:
    """A conversation with a phone number (any notation) on a channel, linked to ``person_id``
    or else to the one person with that number."""
    channel = await hub.storage.channels.get(body.channel_id, principal.tenant_id)
    phone = normalise(body.phone, channel.country_code)
    if phone is None:
        raise RecordInvalid(f"{body.phone!r} is not a phone number",
                            problems=["phone: 7 to 15 digits, optionally +country"])
    person_id = body.person_id
    if person_id is not None:
        await hub.storage.projection.one(principal, "people", person_id)
    else:
        person = await find_person(hub, principal.tenant_id, phone, channel.country_code)
        person_id = person["id"] if person else None
    return await create_record(hub, principal, "comms_threads", {
        "channel_id": channel.channel_id, "phone": phone, "person_id": person_id,
        "display_name": body.display_name})


@router.get("/threads/{thread_id}")
async def thread(thread_id: str, principal: PrincipalDep, hub: HubDep) -> Row:
    return await hub.storage.projection.one(principal, "comms_threads", thread_id)


@router.get("/threads/{thread_id}/messages")
async def messages(thread_id: str, principal: PrincipalDep, hub: HubDep, limit: Limit = 100,
                   offset: Offset = 0) -> list[Row]:
    """A conversation's messages, oldest first."""
    await hub.storage.projection.one(principal, "comms_threads", thread_id)
    return await hub.storage.projection.rows(principal, "comms_messages",
                                             proj.eq("thread_id", thread_id), proj.BY_OCCURRED,
                                             limit, offset)


@router.post("/threads/{thread_id}/messages", status_code=201)
async def send(thread_id: str, body: MessageIn, principal: PrincipalDep, hub: HubDep) -> Row:
    """Queue a message; the hub's sender sends it and its status follows the provider."""
    convo = await hub.storage.projection.one(principal, "comms_threads", thread_id)
    row = await create_record(hub, principal, "comms_messages",
                              outbound_values(convo, principal.user_id, body.body))
    hub.comms_sender.poke()
    return row


@router.post("/threads/{thread_id}/link-person")
async def link_person(thread_id: str, body: LinkIn, principal: PrincipalDep, hub: HubDep
                      ) -> Row:
    await hub.storage.projection.one(principal, "comms_threads", thread_id)
    await hub.storage.projection.one(principal, "people", body.person_id)
    committed = await hub.writer.write(principal, "comms_threads", thread_id,
                                       {"person_id": body.person_id}, create=False)
    assert committed.record is not None
    return committed.record.model_dump(mode="json")


async def _linked(hub: Hub, principal: Principal, thread_id: str) -> Row:
    convo = await hub.storage.projection.one(principal, "comms_threads", thread_id)
    if convo["person_id"] is None:
        raise Conflict("this conversation is not linked to a person: POST "
                       f"/api/comms/threads/{thread_id}/link-person first")
    return convo


@router.post("/threads/{thread_id}/notes", status_code=201)
async def note(thread_id: str, body: NoteIn, principal: PrincipalDep, hub: HubDep) -> Row:
    """A note of the conversation on its person's timeline (an interaction of kind note)."""
    convo = await _linked(hub, principal, thread_id)
    return await create_record(hub, principal, "interactions", note_values(convo, body))


@router.post("/threads/{thread_id}/tasks", status_code=201)
async def task(thread_id: str, body: TaskIn, principal: PrincipalDep, hub: HubDep) -> Row:
    """A follow-up task from the conversation, for its person when it has one."""
    convo = await hub.storage.projection.one(principal, "comms_threads", thread_id)
    return await create_record(hub, principal, "tasks", task_values(convo, body))


@router.post("/webhooks/{provider}")
async def webhook(provider: str, request: Request, hub: HubDep,
                  channel: str = Query("", max_length=64)) -> dict[str, Any]:
    """A provider's event (``?channel=<id>`` in the URL configured at the provider): refused
    401 unless signed (WAHA: ``X-Webhook-Hmac``) or carrying the channel's secret (Evolution:
    ``Authorization: Bearer``); answered after what it reports is committed."""
    if provider not in PROVIDERS:
        raise AuthError(f"unknown provider {provider!r}", code="webhook_refused")
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise RecordInvalid("webhook body too large", problems=[f"at most {MAX_WEBHOOK_BYTES}"])
    try:
        found = await hub.storage.channels.get(channel)
    except NotFound:
        raise AuthError("unknown channel or bad signature", code="webhook_refused") from None
    adapter = provider_for(found, hub.comms_sender.http)
    if found.provider != provider or not adapter.verify(request.headers, body):
        raise AuthError("unknown channel or bad signature", code="webhook_refused")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RecordInvalid("the webhook body is not JSON", problems=["body: not JSON"]) from None
    if adapter.account_of(payload) != found.account:
        raise RecordInvalid("the webhook names another session or instance than its channel",
                            problems=[f"account: expected {found.account!r}"])
    result = await hub.comms_ingest.ingest(found, adapter, payload)
    if result.stored:
        hub.comms_sender.poke()
    return {"stored": result.stored, "duplicates": result.duplicates,
            "statuses": result.statuses, "ignored": result.ignored}


@router.get("/settings")
async def settings(principal: ManagerDep, hub: HubDep) -> dict[str, Any]:
    """The tenant's channels (secrets are never shown)."""
    return {"providers": list(PROVIDERS),
            "channels": await hub.storage.channels.of_tenant(principal.tenant_id)}


@router.patch("/settings")
async def put_channel(body: ChannelIn, principal: AdminDep, hub: HubDep) -> dict[str, Any]:
    """Add or replace one channel (admins)."""
    await hub.storage.channels.put(principal.tenant_id, body)
    return await settings(principal, hub)
