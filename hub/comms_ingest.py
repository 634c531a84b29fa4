"""Provider webhooks into CRDT records: an inbound message opens or joins its conversation
(linked to the person with that phone number), a delivery report moves its message on.

Every record is written by the comms agent through the hub's `LocalWriter`, so it is in the log
and reaches the devices like any change; the webhook is answered after the commit. An inbound
message's record id is derived from the provider's message id, so a webhook delivered twice
finds its record already there and stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from comms.phone import normalise
from comms.providers import Channel, InboundMessage, Provider, StatusReport
from comms.records import advances, inbound_message_id, rank, thread_id_for
from core.errors import Conflict
from core.identity import Principal
from hub.policy import comms_agent
from hub.store import create_many

if TYPE_CHECKING:
    from hub.service import Hub


MAX_GROUP = 200
"""Messages written in one transaction at most."""


@dataclass(frozen=True)
class _Pending:
    message_id: str
    values: dict[str, Any]
    future: asyncio.Future[bool]


@dataclass
class IngestResult:
    stored: list[str] = field(default_factory=list)
    """Record ids of the new inbound messages."""
    duplicates: int = 0
    statuses: int = 0
    """Delivery reports that moved a message on."""
    ignored: int = 0
    """Events the hub does not keep (group chats, reports of unknown messages: kept aside)."""


class CommsIngest:
    """An `async with` service: webhooks arriving together have their new messages written in
    one transaction per tenant with batched statements (`create_many`, by the drain task it
    owns), each answered after that commit."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._waiting: dict[str, list[_Pending]] = defaultdict(list)
        self._drains: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> CommsIngest:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        for task in list(self._drains.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ingest(self, channel: Channel, provider: Provider, payload: Any) -> IngestResult:
        """Store what one (verified) webhook payload reports."""
        result = IngestResult()
        for event in provider.parse(payload):
            if isinstance(event, InboundMessage):
                await self._inbound(channel, event, result)
            else:
                await self._status(channel, event, result)
        return result

    async def _inbound(self, channel: Channel, event: InboundMessage,
                       result: IngestResult) -> None:
        phone = normalise(event.chat_id, channel.country_code)
        if phone is None:
            result.ignored += 1
            return
        message_id = inbound_message_id(channel.channel_id, event.provider_message_id)
        if await self.hub.storage.comms.message_exists(channel.tenant_id, message_id):
            result.duplicates += 1
            return
        thread = await self._thread(channel, phone, event.display_name)
        values = {"tenant_id": channel.tenant_id, "thread_id": thread["id"],
                  "owner_id": thread["owner_id"], "team_id": thread["team_id"],
                  "direction": "inbound", "status": "received", "body": event.body,
                  "media_url": event.media_url, "media_type": event.media_type,
                  "media_seconds": event.media_seconds, "created_at": _iso(event),
                  "occurred_at": _iso(event), "provider_message_id": event.provider_message_id}
        if await self._create(channel.tenant_id, message_id, values):
            result.stored.append(message_id)
        else:  # the same webhook, delivered twice at once
            result.duplicates += 1

    async def _create(self, tenant_id: str, message_id: str, values: dict[str, Any]) -> bool:
        """Create the message with whatever else of the tenant is waiting; False when it
        exists already."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[tenant_id].append(_Pending(message_id, values, future))
        if tenant_id not in self._drains:
            self._drains[tenant_id] = asyncio.create_task(
                self._drain(tenant_id), name=f"velocity-comms-ingest-{tenant_id}")
        return await asyncio.shield(future)

    async def _drain(self, tenant_id: str) -> None:
        waiting, agent = self._waiting[tenant_id], comms_agent(tenant_id)
        try:
            while waiting:
                group, waiting[:MAX_GROUP] = waiting[:MAX_GROUP], []
                firsts = {p.message_id: p for p in reversed(group)}  # a copy in the group: False
                unique = [p for p in group if firsts[p.message_id] is p]
                try:
                    await create_many(self.hub.writer, agent, [
                        ("comms_messages", p.message_id, p.values) for p in unique])
                    outcomes: list[bool | BaseException] = [True] * len(unique)
                except Exception as exc:  # one of them exists already, or is refused:
                    outcomes = ([await self._one(agent, p) for p in unique]  # each its own
                                if len(unique) > 1 or isinstance(exc, Conflict) else [exc])
                results = dict(zip((id(p) for p in unique), outcomes, strict=True))
                for pending in group:
                    outcome = results.get(id(pending), False)
                    if pending.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        pending.future.set_exception(outcome)
                    else:
                        pending.future.set_result(outcome)
        finally:
            del self._drains[tenant_id]

    async def _one(self, agent: Principal, pending: _Pending) -> bool | BaseException:
        try:
            await self.hub.writer.write(agent, "comms_messages", pending.message_id,
                                        pending.values, create=True)
        except Conflict:
            return False
        except Exception as exc:
            return exc
        return True

    async def _thread(self, channel: Channel, phone: str, name: str | None) -> dict[str, Any]:
        """The conversation with ``phone`` on this channel, opened (and linked to the person
        with that number, when exactly one has it) if there is none; an unlinked one is linked
        as soon as such a person exists."""
        store, tenant = self.hub.storage.comms, channel.tenant_id
        row = await store.thread_of(tenant, channel.channel_id, phone)
        if row is not None and row["person_id"] is not None:
            return row
        person = await find_person(self.hub, tenant, phone, channel.country_code)
        agent = comms_agent(tenant)
        if row is not None:
            if person is None:
                return row
            await self.hub.writer.write(agent, "comms_threads", row["id"],
                                        {"person_id": person["id"]}, create=False)
            return {**row, "person_id": person["id"]}
        owner = person["owner_id"] if person and person["owner_id"] else channel.owner_id
        team = (person["team_id"] if person and person["owner_id"] else
                await store.team_of(tenant, owner))
        thread_id = thread_id_for(channel.channel_id, phone)
        values = {"tenant_id": tenant, "channel_id": channel.channel_id, "phone": phone,
                  "display_name": name, "person_id": person["id"] if person else None,
                  "owner_id": owner, "team_id": team}
        with contextlib.suppress(Conflict):  # opened meanwhile by another webhook
            await self.hub.writer.write(agent, "comms_threads", thread_id, values, create=True)
        return {"id": thread_id, "owner_id": owner, "team_id": team,
                "person_id": values["person_id"]}

    async def _status(self, channel: Channel, event: StatusReport, result: IngestResult) -> None:
        store, tenant = self.hub.storage.comms, channel.tenant_id
        # Kept first, so a send recorded after this report still finds it (see CommsSender).
        await store.keep_receipt(channel.channel_id, event.provider_message_id, event.status,
                                 rank(event.status))
        message_id = await store.outbound_message(tenant, event.provider_message_id)
        if message_id is None:
            result.ignored += 1
            return
        if await record_status(self.hub, tenant, message_id, event.status):
            result.statuses += 1


async def record_status(hub: Hub, tenant_id: str, message_id: str, status: str,
                        extra: dict[str, Any] | None = None) -> bool:
    """Move a message to ``status`` if that is a step forward (with ``extra`` fields); whether
    it moved. Judged on the record as it stands under its lock."""
    moved = False

    def values(content: dict[str, Any]) -> dict[str, Any]:
        nonlocal moved
        moved = advances(content.get("status"), status)
        return {**(extra or {}), **({"status": status} if moved else {})}

    await hub.writer.write(comms_agent(tenant_id), "comms_messages", message_id, values,
                           create=False)
    return moved


async def find_person(hub: Hub, tenant_id: str, phone: str, country_code: str
                      ) -> dict[str, Any] | None:
    """The one person of the tenant whose phone normalises to ``phone``; None when nobody or
    several people have it (a shared family number is linked by hand)."""
    rows = await hub.storage.comms.people_by_phone_tail(tenant_id, phone[-7:])
    matches = [dict(r) for r in rows if normalise(r["primary_phone"], country_code) == phone]
    return matches[0] if len(matches) == 1 else None


def _iso(event: InboundMessage) -> str:
    return event.occurred_at.isoformat()
