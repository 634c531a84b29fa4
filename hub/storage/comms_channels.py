"""The tenants' WhatsApp channels (hub-only table ``hub_comms_channels``): where to send, and
the secret each provider's webhooks must prove."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel, Field, HttpUrl

from comms.providers import Channel
from core.errors import Conflict, NotFound
from hub.database import Database

_COLUMNS = ("channel_id, tenant_id, provider, account, base_url, api_key, webhook_secret, "
            "owner_id, country_code")


class ChannelIn(BaseModel):
    """A channel as an admin configures it (secrets are written, never read back)."""

    channel_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    provider: str = Field(pattern=r"^(waha|evolution)$")
    account: str = Field(min_length=1, max_length=100,
                         description="WAHA session or Evolution instance name")
    base_url: HttpUrl
    api_key: str = Field(min_length=1, max_length=500)
    webhook_secret: str = Field(min_length=16, max_length=500,
                                description="HMAC key (WAHA) or bearer secret (Evolution)")
    owner_id: str = Field(min_length=1, max_length=64,
                          description="Broker who gets conversations with unknown numbers")
    country_code: str = Field("91", pattern=r"^[1-9][0-9]{0,3}$")


def _channel(row: Any) -> Channel:
    return Channel(**dict(row))


class Channels:
    """The channels of every tenant."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, channel_id: str, tenant_id: str | None = None) -> Channel:
        """A channel (of ``tenant_id``, when given); `NotFound` otherwise."""
        row = await self.db.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM hub_comms_channels WHERE channel_id = $1 AND "
            "($2::text IS NULL OR tenant_id = $2)", channel_id, tenant_id)
        if row is None:
            raise NotFound(f"no comms channel {channel_id!r}; an admin adds it with "
                           "PATCH /api/comms/settings")
        return _channel(row)

    async def of_tenant(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's channels without their secrets."""
        rows = await self.db.pool.fetch(
            "SELECT channel_id, provider, account, base_url, owner_id, country_code, updated_at"
            " FROM hub_comms_channels WHERE tenant_id = $1 ORDER BY channel_id", tenant_id)
        return [dict(r) for r in rows]

    async def put(self, tenant_id: str, channel: ChannelIn) -> None:
        """Add or replace a channel of ``tenant_id`` (a channel id of another tenant is taken)."""
        try:
            row = await self._upsert(tenant_id, channel)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"{channel.provider} account {channel.account!r} is already a "
                           "channel") from None
        if row is None:
            raise Conflict(f"channel id {channel.channel_id!r} is taken; choose another")

    async def _upsert(self, tenant_id: str, channel: ChannelIn) -> Any:
        return await self.db.pool.fetchrow(
            "INSERT INTO hub_comms_channels (channel_id, tenant_id, provider, account, base_url,"
            " api_key, webhook_secret, owner_id, country_code) VALUES ($1, $2, $3, $4, $5, $6,"
            " $7, $8, $9) ON CONFLICT (channel_id) DO UPDATE SET provider = $3, account = $4,"
            " base_url = $5, api_key = $6, webhook_secret = $7, owner_id = $8,"
            " country_code = $9, updated_at = now() WHERE hub_comms_channels.tenant_id = $2"
            " RETURNING channel_id", channel.channel_id, tenant_id, channel.provider,
            channel.account, str(channel.base_url), channel.api_key, channel.webhook_secret,
            channel.owner_id, channel.country_code)
