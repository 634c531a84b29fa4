"""Evolution API: ``POST /message/sendText/{instance}`` (``apikey`` header) and its
``messages.upsert`` / ``messages.update`` webhooks, proved by a shared secret the instance's
webhook sends as ``Authorization: Bearer …`` (Evolution's custom webhook headers)."""

from __future__ import annotations

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
from comms.waha import _problems

UPDATE_STATUS = {"SERVER_ACK": "sent", "DELIVERY_ACK": "delivered", "READ": "read",
                 "PLAYED": "read", "ERROR": "failed"}
"""Evolution's message statuses (PENDING reports nothing)."""


class _Key(BaseModel):
    model_config = ConfigDict(extra="ignore")
    remoteJid: str = Field(min_length=3, max_length=100)
    fromMe: bool = False
    id: str = Field(min_length=1, max_length=200)


class _Upsert(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: _Key
    pushName: str | None = Field(None, max_length=200)
    message: dict[str, Any] | None = None
    messageTimestamp: int = Field(ge=0, le=MAX_TIMESTAMP)


class _Update(BaseModel):
    model_config = ConfigDict(extra="ignore")
    keyId: str | None = Field(None, min_length=1, max_length=200)
    key: _Key | None = None
    status: str = Field(min_length=1, max_length=40)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: str = Field(min_length=1, max_length=64)
    instance: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] | list[dict[str, Any]]


class Evolution:
    """One Evolution API instance of a channel."""

    def __init__(self, channel: Channel, http: httpx.AsyncClient) -> None:
        self.channel, self.http = channel, http

    async def send_text(self, phone: str, text: str) -> str:
        answer = await post_json(
            self.http,
            f"{self.channel.base_url.rstrip('/')}/message/sendText/{self.channel.account}",
            {"number": to_chat_digits(phone), "text": text}, {"apikey": self.channel.api_key})
        key = answer.get("key") if isinstance(answer, dict) else None
        if not isinstance(key, dict) or not isinstance(key.get("id"), str):
            raise OutcomeUnknown(f"Evolution accepted the message but named no key.id: "
                                 f"{answer!r:.200}")
        return str(key["id"])

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        presented = headers.get("authorization", "").removeprefix("Bearer ").strip()
        return bool(presented) and hmac.compare_digest(presented.encode(),
                                                       self.channel.webhook_secret.encode())

    def account_of(self, payload: Any) -> str | None:
        instance = payload.get("instance") if isinstance(payload, dict) else None
        return instance if isinstance(instance, str) else None

    def parse(self, payload: Any) -> list[Event]:
        try:
            hook = _Webhook.model_validate(payload)
            event = hook.event.lower().replace("_", ".")
            items = hook.data if isinstance(hook.data, list) else [hook.data]
            if event == "messages.upsert":
                return [e for e in (_inbound(_Upsert.model_validate(i)) for i in items) if e]
            if event == "messages.update":
                return [e for e in (_status(_Update.model_validate(i)) for i in items) if e]
        except ValidationError as exc:
            raise WebhookInvalid(f"not an Evolution API webhook payload: {_problems(exc)}",
                                 problems=_problems(exc)) from None
        return []


def _inbound(upsert: _Upsert) -> InboundMessage | None:
    if upsert.key.fromMe:
        return None
    message = upsert.message or {}
    text, media = _text_and_media(message)
    return InboundMessage(
        upsert.key.id, upsert.key.remoteJid, text,
        datetime.fromtimestamp(upsert.messageTimestamp, UTC), display_name=upsert.pushName,
        media_url=_str(media.get("url")), media_type=_str(media.get("mimetype")),
        media_seconds=_seconds(media.get("seconds")))


def _text_and_media(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(message.get("conversation"), str):
        return message["conversation"][:4096], {}
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict) and isinstance(extended.get("text"), str):
        return extended["text"][:4096], {}
    for kind in ("audioMessage", "imageMessage", "videoMessage", "documentMessage"):
        media = message.get(kind)
        if isinstance(media, dict):
            return (_str(media.get("caption")) or "")[:4096], media
    return "", {}


def _status(update: _Update) -> StatusReport | None:
    message_id = update.keyId or (update.key.id if update.key else None)
    status = UPDATE_STATUS.get(update.status.upper())
    if message_id is None or status is None:
        return None
    return StatusReport(message_id, status)


def _seconds(value: Any) -> int | None:
    """A voice note's length, when it is a plausible one."""
    return value if isinstance(value, int) and 0 <= value <= 86_400 else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
