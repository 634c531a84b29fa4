"""Tenants, users, refresh tokens and login failures (``hub_tenants``, ``hub_users``,
``hub_refresh_tokens``, ``hub_login_failures``). Hashing, policy and what goes in the audit
log are `hub.accounts`'; a change of a user that must reach every hub is announced here, in
the transaction that makes it."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from asyncpg import Record

from hub.database import Database
from hub.storage import audit

Notice = tuple[str, str]
"""``(channel, payload)`` of a NOTIFY sent when the transaction commits."""


class AccountStore:
    """Rows of the account tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def ensure_tenant(self, tenant_id: str, name: str) -> None:
        await self._db.pool.execute(
            "INSERT INTO hub_tenants (tenant_id, name) VALUES ($1, $2) "
            "ON CONFLICT (tenant_id) DO NOTHING", tenant_id, name)

    async def add_user(self, tenant_id: str, user_id: str, email: str, full_name: str,
                       password_hash: str, role: str, team_id: str | None) -> Record | None:
        """The new user's row; None when the tenant has a user with this email already."""
        row: Record | None = await self._db.pool.fetchrow(
            "INSERT INTO hub_users (tenant_id, user_id, email, full_name, password_hash, role,"
            " team_id) VALUES ($1, $2, lower($3), $4, $5, $6, $7) ON CONFLICT (tenant_id, email)"
            " DO NOTHING RETURNING *",
            tenant_id, user_id, email, full_name, password_hash, role, team_id)
        return row

    async def user(self, tenant_id: str, user_id: str, *, active_only: bool) -> Record | None:
        sql = "SELECT * FROM hub_users WHERE tenant_id = $1 AND user_id = $2"
        row: Record | None = await self._db.pool.fetchrow(
            sql + " AND active" if active_only else sql, tenant_id, user_id)
        return row

    async def user_by_email(self, tenant_id: str, email: str) -> Record | None:
        """The tenant's user with this email (any case), active or not."""
        row: Record | None = await self._db.pool.fetchrow(
            "SELECT * FROM hub_users WHERE tenant_id = $1 AND email = lower($2)",
            tenant_id, email)
        return row

    async def active_users_by_email(self, email: str) -> list[Record]:
        """Every tenant's active user with this email (a sign-in names no tenant)."""
        rows: list[Record] = await self._db.pool.fetch(
            "SELECT * FROM hub_users WHERE lower(email) = lower($1) AND active", email)
        return rows

    async def users(self, tenant_id: str) -> list[Record]:
        """The tenant's users by name."""
        rows: list[Record] = await self._db.pool.fetch(
            "SELECT * FROM hub_users WHERE tenant_id = $1 ORDER BY full_name", tenant_id)
        return rows

    async def change_user(self, tenant_id: str, user_id: str, role: str, team_id: str | None,
                          full_name: str, *, rescope: bool, notice: Notice | None,
                          entry: audit.Entry) -> Record:
        """Set a user's role, team and name in one transaction with its audit entry; with
        ``rescope``, their tokens end and their scope starts over at the tenant's newest
        sequence."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            row: Record = await conn.fetchrow(
                "UPDATE hub_users u SET role = $3, team_id = $4, full_name = $5, "
                "token_version = token_version + $6::int, scope_seq = CASE WHEN $6::int = 1 THEN"
                " (SELECT last_seq FROM hub_tenants t WHERE t.tenant_id = u.tenant_id) ELSE "
                "scope_seq END WHERE tenant_id = $1 AND user_id = $2 RETURNING *",
                tenant_id, user_id, role, team_id, full_name, int(rescope))
            if notice is not None:
                await _notify(conn, notice)
            await audit.write(conn, tenant_id, entry)
        return row

    async def set_active(self, tenant_id: str, user_id: str, active: bool, *, notice: Notice,
                         entry: audit.Entry) -> Record:
        """Enable or disable a user (their tokens end), announced and audited with it."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            row: Record = await conn.fetchrow(
                "UPDATE hub_users SET active = $3, token_version = token_version + 1 "
                "WHERE tenant_id = $1 AND user_id = $2 RETURNING *", tenant_id, user_id, active)
            await _notify(conn, notice)
            await audit.write(conn, tenant_id, entry)
        return row

    async def set_password_hash(self, tenant_id: str, user_id: str, password_hash: str) -> None:
        """A new password hash; the user's tokens end."""
        await self._db.pool.execute(
            "UPDATE hub_users SET password_hash = $3, token_version = token_version + 1 "
            "WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id, password_hash)

    async def end_tokens(self, tenant_id: str, user_id: str) -> None:
        """Every access and refresh token of the user stops working."""
        await self._db.pool.execute(
            "UPDATE hub_users SET token_version = token_version + 1 WHERE tenant_id = $1 AND "
            "user_id = $2", tenant_id, user_id)

    async def add_refresh_token(self, tenant_id: str, token_hash: str, user_id: str,
                                token_version: int, ttl_s: int) -> None:
        await self._db.pool.execute(
            "INSERT INTO hub_refresh_tokens (tenant_id, token_hash, user_id, token_version, "
            "expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
            tenant_id, token_hash, user_id, token_version, ttl_s)

    async def use_refresh_token(self, token_hash: str) -> Record | None:
        """Use up an unused refresh token: ``tenant_id, user_id, token_version,
        expires_at``; None when it is unknown or used."""
        row: Record | None = await self._db.pool.fetchrow(
            "UPDATE hub_refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS "
            "NULL RETURNING tenant_id, user_id, token_version, expires_at", token_hash)
        return row

    async def refresh_token_owner(self, token_hash: str) -> Record | None:
        """``tenant_id, user_id`` of a refresh token, used or not."""
        row: Record | None = await self._db.pool.fetchrow(
            "SELECT tenant_id, user_id FROM hub_refresh_tokens WHERE token_hash = $1",
            token_hash)
        return row

    async def recent_failures(self, keys: Sequence[str], window_s: int) -> list[Record]:
        """``key, failures, left_s`` of the keys whose failure window is still open."""
        rows: list[Record] = await self._db.pool.fetch(
            "SELECT key, failures, extract(epoch FROM window_start + make_interval(secs => $2)"
            " - now()) AS left_s FROM hub_login_failures WHERE key = ANY($1::text[]) AND "
            "window_start > now() - make_interval(secs => $2)", list(keys), window_s)
        return rows

    async def count_failure(self, keys: Sequence[str], window_s: int) -> dict[str, int]:
        """One more failed login for each key (a window older than ``window_s`` starts
        over); the failures now counted, by key."""
        rows = await self._db.pool.fetch(
            "INSERT INTO hub_login_failures AS f (key, failures, window_start) SELECT k,"
            " 1, now() FROM unnest($1::text[]) AS k ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN f.window_start < now() - make_interval(secs => $2) "
            "THEN 1 ELSE f.failures + 1 END, window_start = CASE WHEN f.window_start < "
            "now() - make_interval(secs => $2) THEN now() ELSE f.window_start END "
            "RETURNING key, failures", list(keys), window_s)
        return {r["key"]: r["failures"] for r in rows}

    async def clear_failures(self, key: str) -> None:
        await self._db.pool.execute("DELETE FROM hub_login_failures WHERE key = $1", key)


async def _notify(conn: asyncpg.Connection, notice: Notice) -> None:
    """Send ``notice`` when the connection's transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", *notice)
