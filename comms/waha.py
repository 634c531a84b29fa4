"""WAHA (WhatsApp HTTP API): ``POST /api/sendText`` and its ``message`` / ``message.ack``
webhooks, signed with HMAC-SHA512 of the body (``X-Webhook-Hmac``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comms._http import post_json
from comms.phone import to_chat_digits
from comms.providers import (
    MAX_TIMESTAMP,
    Channel,
    Event,
    InboundMessage,
    OutcomeUnknown,
    StatusReport,
    WebhookInvalid,
)

ACK_STATUS = {-1: "failed", 1: "sent", 2: "delivered", 3: "read", 4: "read"}
"""WAHA's ack numbers (ERROR, SERVER, DEVICE, READ, PLAYED); 0 (PENDING) reports nothing."""


class _Media(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str | None = Field(None, max_length=2048)
    mimetype: str | None = Field(None, max_length=100)


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=200)
    timestamp: int = Field(ge=0, le=MAX_TIMESTAMP)
    from_: str = Field(alias="from", min_length=3, max_length=100)
    fromMe: bool = False
    body: str | None = Field(None, max_length=4096)
    hasMedia: bool = False
    media: _Media | None = None
    notifyName: str | None = Field(None, max_length=200)


class _Ack(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=200)
    ack: int = Field(ge=-1, le=4)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: str = Field(min_length=1, max_length=64)
    session: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any]


class Waha:
    """One WAHA session of a channel."""

    def __init__(self, channel: Channel, http: httpx.AsyncClient) -> None:
        self.channel, self.http = channel, http

    async def send_text(self, phone: str, text: str) -> str:
        answer = await post_json(
            self.http, f"{self.channel.base_url.rstrip('/')}/api/sendText",
            {"session": self.channel.account, "chatId": f"{to_chat_digits(phone)}@c.us",
             "text": text},
            {"X-Api-Key": self.channel.api_key})
        message_id = _message_id(answer)
        if message_id is None:
            raise OutcomeUnknown(f"WAHA accepted the message but named no id: {answer!r:.200}")
        return message_id

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        presented = headers.get("x-webhook-hmac", "")
        algorithm = headers.get("x-webhook-hmac-algorithm", "sha512").lower()
        if algorithm != "sha512" or not presented:
            return False
        expected = sign(self.channel.webhook_secret, body)
        return hmac.compare_digest(presented.lower(), expected)

    def account_of(self, payload: Any) -> str | None:
        session = payload.get("session") if isinstance(payload, dict) else None
        return session if isinstance(session, str) else None

    def parse(self, payload: Any) -> list[Event]:
        try:
            hook = _Webhook.model_validate(payload)
            if hook.event == "message":
                message = _Message.model_validate(hook.payload)
                if message.fromMe:
                    return []  # sent from the phone itself: not an inbound message
                media = message.media if message.hasMedia else None
                return [InboundMessage(
                    message.id, message.from_, message.body or "",
                    datetime.fromtimestamp(message.timestamp, UTC),
                    display_name=message.notifyName or _notify_name(hook.payload),
                    media_url=media.url if media else None,
                    media_type=media.mimetype if media else None)]
            if hook.event == "message.ack":
                ack = _Ack.model_validate(hook.payload)
                status = ACK_STATUS.get(ack.ack)
                return [StatusReport(ack.id, status)] if status else []
        except ValidationError as exc:
            raise WebhookInvalid(f"not a WAHA webhook payload: {_problems(exc)}",
                                 problems=_problems(exc)) from None
        return []


def sign(secret: str, body: bytes) -> str:
    """The ``X-Webhook-Hmac`` WAHA sends with ``body`` under key ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def _message_id(answer: Any) -> str | None:
    """WAHA answers with the sent message, whose id is a string (``true_…@c.us_…``), an
    object with ``_serialized`` (WEBJS engine) or a ``key.id`` (NOWEB engine)."""
    if not isinstance(answer, dict):
        return None
    ident = answer.get("id")
    if isinstance(ident, str) and ident:
        return ident
    if isinstance(ident, dict) and isinstance(ident.get("_serialized"), str):
        return str(ident["_serialized"])
    key = answer.get("key")
    if isinstance(key, dict) and isinstance(key.get("id"), str):
        return str(key["id"])
    return None


def _notify_name(payload: dict[str, Any]) -> str | None:
    data = payload.get("_data")
    name = data.get("notifyName") if isinstance(data, dict) else None
    return name[:200] if isinstance(name, str) and name else None


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()][:10]
