"""The record values of comms actions, the same on the hub and on a device, and the order of
delivery statuses."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["LinkIn", "MessageIn", "NoteIn", "TaskIn", "ThreadIn", "advances", "inbound_message_id",
           "note_values", "outbound_values", "rank", "task_values", "thread_id_for"]

_NAMESPACE = uuid.UUID("6f1c2a52-8f0e-4c53-9a41-0c0a7e1d2b3c")
_RANK = {"queued": 0, "sent": 1, "failed": 1, "delivered": 2, "read": 3}


class ThreadIn(BaseModel):
    channel_id: str = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=3, max_length=40, description="Any common notation")
    person_id: str | None = Field(None, max_length=64)
    display_name: str | None = Field(None, max_length=200)


class MessageIn(BaseModel):
    body: str = Field(min_length=1, max_length=4096)


class LinkIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=64)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    summary: str | None = Field(None, max_length=1000)


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    due_at: datetime | None = None
    priority: int = Field(2, ge=1, le=3)


def thread_id_for(channel_id: str, phone: str) -> str:
    """The id the hub gives the conversation it opens for an inbound message."""
    return str(uuid.uuid5(_NAMESPACE, f"thread|{channel_id}|{phone}"))


def inbound_message_id(channel_id: str, provider_message_id: str) -> str:
    """The record id of an inbound message: the same for every copy of its webhook, so a
    duplicate is refused by the store as an existing record."""
    return str(uuid.uuid5(_NAMESPACE, f"message|{channel_id}|{provider_message_id}"))


def outbound_values(thread: Mapping[str, Any], author_id: str, body: str) -> dict[str, Any]:
    """A queued outbound message in ``thread``: the thread's scope, its author's words."""
    return {"thread_id": thread["id"], "direction": "outbound", "body": body,
            "status": "queued", "occurred_at": _now(), "author_id": author_id,
            "owner_id": thread.get("owner_id"), "team_id": thread.get("team_id")}


def note_values(thread: Mapping[str, Any], note: NoteIn) -> dict[str, Any]:
    """A note of the conversation, as an interaction of its person."""
    return {"person_id": thread["person_id"], "kind": "note", "channel": "whatsapp",
            "occurred_at": _now(), "summary": note.summary or note.text[:200],
            "body": note.text, "thread_id": thread["id"]}


def task_values(thread: Mapping[str, Any], task: TaskIn) -> dict[str, Any]:
    return {"title": task.title, "person_id": thread.get("person_id"),
            "due_at": task.due_at.isoformat() if task.due_at else None,
            "priority": task.priority, "thread_id": thread["id"]}


def advances(current: str | None, new: str) -> bool:
    """Whether a reported status moves a message on: sent → delivered → read; failed only
    replaces queued or sent (reports arrive out of order and twice)."""
    if current == new or new not in _RANK:
        return False
    if new == "failed":
        return current in (None, "queued", "sent")
    return _RANK[new] > _RANK.get(current or "queued", 0)


def rank(status: str) -> int:
    return _RANK.get(status, 0)


def _now() -> str:
    return datetime.now(UTC).isoformat()
