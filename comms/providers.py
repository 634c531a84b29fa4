"""The one interface every WhatsApp provider speaks to the hub, and what its webhooks carry.

A provider sends a text and turns its webhook payloads into `InboundMessage` and
`StatusReport` events. Its sending errors come in three kinds, which decide what the hub's
sender does next: `ProviderUnavailable` (nothing was sent: retry later), `ProviderRefused`
(the provider answered no: never retry) and `OutcomeUnknown` (the request may have been sent:
never retry, a person checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.errors import RecordInvalid, VelocityError

__all__ = ["MAX_TIMESTAMP", "Channel", "Event", "InboundMessage", "OutcomeUnknown", "Provider",
           "ProviderError", "ProviderRefused", "ProviderUnavailable", "StatusReport",
           "WebhookInvalid"]

MAX_TIMESTAMP = 2**33
"""Seconds since 1970 a webhook may name (the year 2242): beyond, a date cannot be made."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One WhatsApp number of a tenant at one provider: where to send, how webhooks prove
    themselves, who owns a conversation nobody else does."""

    channel_id: str
    tenant_id: str
    provider: str
    account: str
    """The provider's name for the number: WAHA's session, Evolution's instance."""
    base_url: str
    api_key: str
    webhook_secret: str
    owner_id: str
    """The broker a conversation with an unknown number belongs to."""
    country_code: str = "91"


@dataclass(frozen=True, slots=True)
class InboundMessage:
    provider_message_id: str
    chat_id: str
    """The provider's chat id (``919876543210@c.us``); `comms.phone.normalise` reads it."""
    body: str
    occurred_at: datetime
    display_name: str | None = None
    media_url: str | None = None
    media_type: str | None = None
    media_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    provider_message_id: str
    status: str
    """sent, delivered, read or failed."""


Event = InboundMessage | StatusReport


class ProviderError(VelocityError):
    """A provider did not take a message."""

    code = "provider"


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or said it cannot send now: nothing was sent."""

    code = "provider_unavailable"


class ProviderRefused(ProviderError):
    """The provider refused the message (a bad number, a bad session): sending again fails too."""

    code = "provider_refused"


class OutcomeUnknown(ProviderError):
    """The request went out but no answer came back: the message may have been sent."""

    code = "outcome_unknown"


class WebhookInvalid(RecordInvalid):
    """A webhook's payload is not what its provider documents."""

    code = "invalid_webhook"


class Provider(Protocol):
    """A WhatsApp provider: WAHA or Evolution API."""

    async def send_text(self, phone: str, text: str) -> str:
        """Send ``text`` to ``phone`` (E.164); the provider's message id."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether a webhook request carries this channel's signature or secret."""
        ...

    def parse(self, payload: Any) -> list[Event]:
        """The events of one webhook payload (none for event kinds the hub does not use);
        `WebhookInvalid` when the payload is not what the provider documents."""
        ...

    def account_of(self, payload: Any) -> str | None:
        """The session or instance a payload names."""
        ...
