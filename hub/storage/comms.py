"""Comms: the reads webhooks are matched with (messages, threads, people by phone), delivery
receipts (``hub_comms_receipts``) and the outbound send queue (``hub_comms_outbound``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from hub.database import Database

Records = list[asyncpg.Record]


class CommsStore:
    """Reads of the comms projection and the hub-only comms tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def message_exists(self, tenant_id: str, message_id: str) -> bool:
        return bool(await self._db.pool.fetchval(
            "SELECT 1 FROM comms_messages WHERE tenant_id = $1 AND id = $2", tenant_id,
            message_id))

    async def thread_of(self, tenant_id: str, channel_id: str, phone: str
                        ) -> dict[str, Any] | None:
        """The oldest live conversation with ``phone`` on a channel: ``id, owner_id, team_id,
        person_id``."""
        row = await self._db.pool.fetchrow(
            "SELECT id, owner_id, team_id, person_id FROM comms_threads WHERE tenant_id = $1 AND"
            " channel_id = $2 AND phone = $3 AND NOT deleted ORDER BY created_at, id LIMIT 1",
            tenant_id, channel_id, phone)
        return dict(row) if row else None

    async def team_of(self, tenant_id: str, user_id: str) -> str | None:
        """A user's team."""
        team: str | None = await self._db.pool.fetchval(
            "SELECT team_id FROM hub_users WHERE tenant_id = $1 AND user_id = $2", tenant_id,
            user_id)
        return team

    async def people_by_phone_tail(self, tenant_id: str, tail: str) -> Records:
        """Live people whose phone's digits end in ``tail`` (at most 50): ``id, owner_id,
        team_id, primary_phone``."""
        rows: Records = await self._db.pool.fetch(
            "SELECT id, owner_id, team_id, primary_phone FROM crm_people WHERE tenant_id = $1 "
            "AND NOT deleted AND primary_phone IS NOT NULL AND right(regexp_replace("
            "primary_phone, '[^0-9]', '', 'g'), 7) = $2 LIMIT 50", tenant_id, tail)
        return rows

    async def keep_receipt(self, channel_id: str, provider_message_id: str, status: str,
                           rank: int) -> None:
        """Keep a delivery report unless one further along is kept (a failure always is)."""
        await self._db.pool.execute(
            "INSERT INTO hub_comms_receipts (channel_id, provider_message_id, status, rank) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (channel_id, provider_message_id) DO UPDATE "
            "SET status = $3, rank = $4, reported_at = now() WHERE hub_comms_receipts.rank < $4"
            " OR $3 = 'failed'", channel_id, provider_message_id, status, rank)

    async def receipt(self, channel_id: str, provider_message_id: str) -> str | None:
        """The kept delivery status of a provider's message."""
        status: str | None = await self._db.pool.fetchval(
            "SELECT status FROM hub_comms_receipts WHERE channel_id = $1 AND "
            "provider_message_id = $2", channel_id, provider_message_id)
        return status

    async def outbound_message(self, tenant_id: str, provider_message_id: str) -> str | None:
        """The id of the outbound message the provider knows by ``provider_message_id``."""
        message_id: str | None = await self._db.pool.fetchval(
            "SELECT id FROM comms_messages WHERE tenant_id = $1 AND provider_message_id = $2 "
            "AND direction = 'outbound' LIMIT 1", tenant_id, provider_message_id)
        return message_id

    async def expire_claims(self, error: str, lease_s: float) -> None:
        """Fail the sends claimed longer than ``lease_s`` ago (their outcome is unknown)."""
        await self._db.pool.execute(
            "UPDATE hub_comms_outbound SET state = 'failed', last_error = $1, updated_at = now()"
            " WHERE state = 'sending' AND updated_at < now() - make_interval(secs => $2)",
            error, lease_s)

    async def due(self) -> list[dict[str, Any]]:
        """Queued outbound messages never tried or due for a retry, oldest first (at most
        50): ``tenant_id, id, body, channel_id, phone``."""
        rows = await self._db.pool.fetch(
            "SELECT m.tenant_id, m.id, m.body, t.channel_id, t.phone FROM comms_messages m "
            "JOIN comms_threads t ON t.tenant_id = m.tenant_id AND t.id = m.thread_id "
            "LEFT JOIN hub_comms_outbound o ON o.tenant_id = m.tenant_id AND o.message_id = m.id"
            " WHERE m.status = 'queued' AND m.direction = 'outbound' AND NOT m.deleted AND "
            "(o.message_id IS NULL OR (o.state = 'retry' AND o.next_attempt_at <= now())) "
            "ORDER BY m.occurred_at LIMIT 50")
        return [dict(r) for r in rows]

    async def claim(self, tenant_id: str, message_id: str) -> int | None:
        """Claim a message's send: its attempt number, None when another hub holds it."""
        attempts: int | None = await self._db.pool.fetchval(
            "INSERT INTO hub_comms_outbound (tenant_id, message_id, state, attempts) VALUES "
            "($1, $2, 'sending', 1) ON CONFLICT (tenant_id, message_id) DO UPDATE SET state = "
            "'sending', attempts = hub_comms_outbound.attempts + 1, updated_at = now() WHERE "
            "hub_comms_outbound.state = 'retry' AND hub_comms_outbound.next_attempt_at <= now()"
            " RETURNING attempts", tenant_id, message_id)
        return attempts

    async def retry_later(self, tenant_id: str, message_id: str, error: str, delay_s: float
                          ) -> None:
        await self._db.pool.execute(
            "UPDATE hub_comms_outbound SET state = 'retry', last_error = $3, "
            "next_attempt_at = now() + make_interval(secs => $4), updated_at = now() "
            "WHERE tenant_id = $1 AND message_id = $2", tenant_id, message_id, error, delay_s)

    async def sent(self, tenant_id: str, message_id: str, provider_message_id: str) -> None:
        await self._db.pool.execute(
            "UPDATE hub_comms_outbound SET state = 'sent', provider_message_id = $3, "
            "updated_at = now() WHERE tenant_id = $1 AND message_id = $2", tenant_id,
            message_id, provider_message_id)

    async def failed(self, tenant_id: str, message_id: str, error: str) -> None:
        await self._db.pool.execute(
            "UPDATE hub_comms_outbound SET state = 'failed', last_error = $3, updated_at = now()"
            " WHERE tenant_id = $1 AND message_id = $2", tenant_id, message_id, error)

    async def unrecorded_answers(self) -> Records:
        """Sends whose answer (sent or failed) the message records do not hold yet (at most
        100): ``tenant_id, message_id, state, provider_message_id, last_error, channel_id``."""
        rows: Records = await self._db.pool.fetch(
            "SELECT o.tenant_id, o.message_id, o.state, o.provider_message_id, o.last_error, "
            "t.channel_id FROM hub_comms_outbound o JOIN comms_messages m ON m.tenant_id = "
            "o.tenant_id AND m.id = o.message_id JOIN comms_threads t ON t.tenant_id = "
            "m.tenant_id AND t.id = m.thread_id WHERE NOT o.recorded AND o.state IN ('sent', "
            "'failed') LIMIT 100")
        return rows

    async def recorded(self, tenant_id: str, message_id: str) -> None:
        """The message record holds its send's answer now."""
        await self._db.pool.execute(
            "UPDATE hub_comms_outbound SET recorded = true WHERE tenant_id = $1 AND "
            "message_id = $2", tenant_id, message_id)


