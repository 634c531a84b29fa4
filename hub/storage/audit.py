"""The audit log: who did what to what, written next to the act, read by filters, newest first.

Every commit already leaves its entries: a sync write's log row is its ``write`` entry (naming the
record and its sequence), and ``create`` (seeding, imports) and ``refused`` are rows here. The acts
that are not record writes (sign-ins, account management, device pairing) and the REST acts whose
meaning a bare ``write`` hides (a stage move, a reassignment, which fields an edit changed) add a
row of their own with ``action`` named ``<noun>.<verb>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from core.errors import RecordInvalid
from hub.database import Database

Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"

MAX_PAGE = 200


async def record(db: Executor, tenant_id: str, action: str, *, user_id: str | None,
                 target: str | None = None, guid: str | None = None, seq: int | None = None,
                 device_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Append one entry (on ``db``: a connection inside the act's transaction, or the pool)."""
    await db.execute(
        "INSERT INTO hub_audit (tenant_id, user_id, device_id, action, guid, seq, detail, "
        "target) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", tenant_id, user_id, device_id,
        action, guid, seq, detail, target)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry to append (`record`'s arguments), for a store that writes it in a
    transaction of its own."""

    action: str
    user_id: str | None
    target: str | None = None
    guid: str | None = None
    seq: int | None = None
    device_id: str | None = None
    detail: dict[str, Any] | None = None


async def write(db: Executor, tenant_id: str, entry: Entry) -> None:
    """Append ``entry`` (on ``db``: a connection inside the act's transaction, or the pool)."""
    await record(db, tenant_id, entry.action, user_id=entry.user_id, target=entry.target,
                 guid=entry.guid, seq=entry.seq, device_id=entry.device_id,
                 detail=entry.detail)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to read: every given condition holds (``action`` ending in ``.``: every
    action of that noun); ``before``: entries older than that id (the next page)."""

    user_id: str | None = None
    action: str | None = None
    target: str | None = None
    device_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise RecordInvalid("since is after until", problems=["since: after until"])
        if not 1 <= self.limit <= MAX_PAGE:
            raise RecordInvalid(f"limit is 1 to {MAX_PAGE}", problems=["limit: out of range"])


async def entries(pool: asyncpg.Pool, tenant_id: str, where: AuditFilter
                  ) -> list[dict[str, Any]]:
    """One page of the tenant's entries matching ``where``, newest first (one query; the
    conditions are fixed SQL with parameters, a missing one is TRUE).

    The entries are the ``hub_audit`` rows and the log rows of sync writes (action ``write``,
    naming the record in ``guid``). A tenant's log rows take their audit ids in sequence order
    (every log append holds the tenant's sequence row), so the log's key pages them."""
    action = where.action
    prefix = action is not None and action.endswith(".")
    rows = await pool.fetch(
        "SELECT * FROM ("
        "(SELECT audit_id, at, user_id, device_id, action, target, guid, seq, detail "
        "FROM hub_audit WHERE tenant_id = $1 "
        "AND ($2::text IS NULL OR user_id = $2) "
        "AND ($3::text IS NULL OR (CASE WHEN $4 THEN starts_with(action, $3) "
        "ELSE action = $3 END)) "
        "AND ($5::text IS NULL OR target = $5 OR guid = $5) "
        "AND ($6::text IS NULL OR device_id = $6) "
        "AND ($7::timestamptz IS NULL OR at >= $7) AND ($8::timestamptz IS NULL OR at < $8) "
        "AND ($9::bigint IS NULL OR audit_id < $9) "
        "ORDER BY audit_id DESC LIMIT $10) UNION ALL "
        "(SELECT audit_id, created_at, user_id, device_id, 'write', NULL, guid, seq, NULL "
        "FROM hub_updates WHERE tenant_id = $1 AND audit_id IS NOT NULL "
        "AND ($2::text IS NULL OR user_id = $2) "
        "AND ($3::text IS NULL OR (CASE WHEN $4 THEN starts_with('write', $3) "
        "ELSE $3 = 'write' END)) "
        "AND ($5::text IS NULL OR guid = $5) "
        "AND ($6::text IS NULL OR device_id = $6) "
        "AND ($7::timestamptz IS NULL OR created_at >= $7) "
        "AND ($8::timestamptz IS NULL OR created_at < $8) "
        "AND ($9::bigint IS NULL OR audit_id < $9) "
        "ORDER BY seq DESC LIMIT $10)) AS e ORDER BY audit_id DESC LIMIT $10",
        tenant_id, where.user_id, action, prefix, where.target, where.device_id, where.since,
        where.until, where.before, where.limit)
    return [dict(r) for r in rows]


async def record_for_email(db: Executor, email: str, action: str, detail: dict[str, Any]
                           ) -> None:
    """An entry in the tenant of every account with ``email`` (a sign-in names no tenant). One
    statement whether or not the email exists, so the time it takes tells nobody which."""
    await db.execute(
        "INSERT INTO hub_audit (tenant_id, action, target, detail) SELECT tenant_id, $2, "
        "user_id, $3 FROM hub_users WHERE lower(email) = lower($1)", email, action, detail)


class AuditLog:
    """The audit log on the pool, for acts that are not in a transaction of their own."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, tenant_id: str, action: str, *, user_id: str | None,
                     target: str | None = None, guid: str | None = None, seq: int | None = None,
                     device_id: str | None = None, detail: dict[str, Any] | None = None
                     ) -> None:
        """Append one entry (`record`)."""
        await record(self._db.pool, tenant_id, action, user_id=user_id, target=target,
                     guid=guid, seq=seq, device_id=device_id, detail=detail)

    async def entries(self, tenant_id: str, where: AuditFilter) -> list[dict[str, Any]]:
        """One page of the tenant's entries (`entries`)."""
        return await entries(self._db.pool, tenant_id, where)

    async def record_for_email(self, email: str, action: str, detail: dict[str, Any]) -> None:
        """An entry in the tenant of every account with ``email`` (`record_for_email`)."""
        await record_for_email(self._db.pool, email, action, detail)
