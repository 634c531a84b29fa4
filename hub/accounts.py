"""Tenants, users, devices, pairing codes and CRDT client-id bindings in PostgreSQL.

Every change of a user's role, team or status bumps their token version (their access and
refresh tokens stop working) and is announced on the control channel, so every hub process closes
that user's open sync sessions at once (`hub.fanout`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from core.auth import (
    decoy_hash,
    hash_password,
    new_pairing_code,
    new_refresh_token,
    pairing_code_hash,
    refresh_token_hash,
    verify_password,
)
from core.errors import AuthError, Conflict, NotFound, PermissionDenied, RecordInvalid, Throttled
from core.identity import Principal, Role
from core.ids import new_id
from hub import audit
from hub.database import Database
from hub.policy import check_grant_role, check_manage_user

CONTROL_CHANNEL = "velocity_control"
MIN_PASSWORD = 10
HASHING_THREADS = 2
"""Password hashes computed at once, each in a worker thread (argon2 releases the GIL); more
logins wait their turn instead of taking every thread of the default executor."""


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise RecordInvalid(f"a password has at least {MIN_PASSWORD} characters",
                            problems=[f"password: at least {MIN_PASSWORD} characters"])


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins allowed per account and per source address within ``window_s``."""

    per_account: int
    per_address: int
    window_s: int


@dataclass(frozen=True, slots=True)
class Device:
    tenant_id: str
    device_id: str
    user_id: str
    name: str
    kind: str
    public_key: bytes
    status: str
    blocked_reason: str | None
    offences: int = 0


@dataclass(frozen=True, slots=True)
class User:
    tenant_id: str
    user_id: str
    email: str
    full_name: str
    role: Role
    team_id: str | None
    active: bool = True
    token_version: int = 0
    scope_seq: int = 0

    @property
    def principal(self) -> Principal:
        return Principal(self.tenant_id, self.user_id, self.role, self.team_id)


def _user(row: asyncpg.Record) -> User:
    return User(row["tenant_id"], row["user_id"], row["email"], row["full_name"],
                Role(row["role"]), row["team_id"], row["active"], row["token_version"],
                row["scope_seq"])


def _device(row: asyncpg.Record) -> Device:
    return Device(row["tenant_id"], row["device_id"], row["user_id"], row["name"], row["kind"],
                  bytes(row["public_key"]), row["status"], row["blocked_reason"],
                  row["offences"])


class Accounts:
    """Identity and device registry."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._hashing = asyncio.Semaphore(HASHING_THREADS)

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(hash_password, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(verify_password, password_hash, password)

    async def ensure_tenant(self, tenant_id: str, name: str) -> None:
        await self.db.pool.execute(
            "INSERT INTO hub_tenants (tenant_id, name) VALUES ($1, $2) "
            "ON CONFLICT (tenant_id) DO NOTHING", tenant_id, name,
        )

    async def create_user(
        self, tenant_id: str, email: str, password: str, role: Role, full_name: str,
        *, team_id: str | None = None, user_id: str | None = None,
    ) -> User:
        """Create a user (idempotent on tenant + email: an existing user is returned as is)."""
        row = await self.db.pool.fetchrow(
            "INSERT INTO hub_users (tenant_id, user_id, email, full_name, password_hash, role,"
            " team_id) VALUES ($1, $2, lower($3), $4, $5, $6, $7) ON CONFLICT (tenant_id, email)"
            " DO NOTHING RETURNING *",
            tenant_id, user_id or new_id(), email, full_name, await self._hash(password),
            role.value, team_id,
        )
        if row is None:
            row = await self.db.pool.fetchrow(
                "SELECT * FROM hub_users WHERE tenant_id = $1 AND email = lower($2)",
                tenant_id, email,
            )
        else:  # an operator's account (terminal, seeds): no user of the hub made it
            await audit.record(self.db.pool, tenant_id, "user.create", user_id=None,
                               target=row["user_id"],
                               detail={"email": row["email"], "role": role.value,
                                       "team_id": team_id})
        return _user(row)

    async def login(self, email: str, password: str, address: str = "local",
                    limits: LoginLimits | None = None) -> User:
        """The user with this email and password. With ``limits`` (every network login):
        refused (429) while the account or the source address has too many recent failures.
        An unknown email costs the same time as a wrong password."""
        keys = (f"account:{email.lower()}", f"address:{address}")
        if limits is not None:
            try:
                await self._check_throttle(keys, (limits.per_account, limits.per_address),
                                           limits.window_s)
            except Throttled as exc:
                await audit.record_for_email(self.db.pool, email, "login.locked",
                                             {"address": address, "why": exc.message})
                raise
        rows = await self.db.pool.fetch(
            "SELECT * FROM hub_users WHERE lower(email) = lower($1) AND active", email
        )
        found = None
        for row in rows or [None]:
            if await self._verify(row["password_hash"] if row else decoy_hash(), password):
                found = row
                break
        if found is None:
            if limits is not None:
                await self.db.pool.execute(
                    "INSERT INTO hub_login_failures AS f (key, failures, window_start) SELECT k,"
                    " 1, now() FROM unnest($1::text[]) AS k ON CONFLICT (key) DO UPDATE SET "
                    "failures = CASE WHEN f.window_start < now() - make_interval(secs => $2) "
                    "THEN 1 ELSE f.failures + 1 END, window_start = CASE WHEN f.window_start < "
                    "now() - make_interval(secs => $2) THEN now() ELSE f.window_start END",
                    list(keys), limits.window_s)
            await audit.record_for_email(self.db.pool, email, "login.failed",
                                         {"address": address})
            raise AuthError("wrong email or password", code="bad_credentials")
        if limits is not None:
            await self.db.pool.execute("DELETE FROM hub_login_failures WHERE key = $1",
                                       keys[0])
        await audit.record(self.db.pool, found["tenant_id"], "login", user_id=found["user_id"],
                           target=found["user_id"], detail={"address": address})
        return _user(found)

    async def _check_throttle(self, keys: tuple[str, str], maxima: tuple[int, int],
                              window_s: int) -> None:
        rows = await self.db.pool.fetch(
            "SELECT key, failures, extract(epoch FROM window_start + make_interval(secs => $2)"
            " - now()) AS left_s FROM hub_login_failures WHERE key = ANY($1::text[]) AND "
            "window_start > now() - make_interval(secs => $2)", list(keys), window_s)
        for row in rows:
            limit = maxima[keys.index(row["key"])]
            if row["failures"] >= limit:
                what = "account" if row["key"] == keys[0] else "address"
                wait = max(1, int(row["left_s"]) + 1)
                raise Throttled(f"too many failed logins for this {what}; try again in {wait} s"
                                " or ask an admin to reset the password", retry_after_s=wait)

    async def issue_refresh(self, user: User, ttl_s: int) -> str:
        """A one-use refresh token for ``user`` at their current token version."""
        token = new_refresh_token()
        await self.db.pool.execute(
            "INSERT INTO hub_refresh_tokens (tenant_id, token_hash, user_id, token_version, "
            "expires_at) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
            user.tenant_id, refresh_token_hash(token), user.user_id, user.token_version, ttl_s)
        return token

    async def redeem_refresh(self, token: str) -> User:
        """The user of a valid refresh token, which is used up (the caller issues a new one).
        A token used twice ends every session of its user (it was stolen or replayed)."""
        digest = refresh_token_hash(token)
        row = await self.db.pool.fetchrow(
            "UPDATE hub_refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS "
            "NULL RETURNING tenant_id, user_id, token_version, expires_at", digest)
        if row is None:
            used = await self.db.pool.fetchrow(
                "SELECT tenant_id, user_id FROM hub_refresh_tokens WHERE token_hash = $1", digest)
            if used is None:
                raise AuthError("unknown refresh token; log in again", code="token_invalid")
            await self._bump(used["tenant_id"], used["user_id"])
            raise AuthError("refresh token already used; log in again", code="token_reused")
        user = await self.caller(row["tenant_id"], row["user_id"])
        if row["expires_at"] <= datetime.now(UTC) or row["token_version"] != user.token_version:
            raise AuthError("refresh token expired or revoked; log in again",
                            code="token_revoked")
        return user

    async def user(self, tenant_id: str, user_id: str) -> User:
        """An active user; a missing or disabled one is a `NotFound`."""
        row = await self.db.pool.fetchrow(
            "SELECT * FROM hub_users WHERE tenant_id = $1 AND user_id = $2 AND active",
            tenant_id, user_id,
        )
        if row is None:
            raise NotFound(f"no active user {user_id} in this tenant")
        return _user(row)

    async def caller(self, tenant_id: str, user_id: str) -> User:
        """The user behind a token or a device: must exist and be active (else `AuthError`)."""
        try:
            return await self.user(tenant_id, user_id)
        except NotFound:
            raise AuthError("user no longer exists or is disabled", code="user_inactive"
                            ) from None

    async def user_id_of(self, tenant_id: str, email: str) -> str:
        """The id of the user with ``email`` in the tenant (active or not)."""
        user_id: str | None = await self.db.pool.fetchval(
            "SELECT user_id FROM hub_users WHERE tenant_id = $1 AND email = lower($2)",
            tenant_id, email)
        if user_id is None:
            raise NotFound(f"no user {email} in tenant {tenant_id}")
        return user_id

    async def account(self, manager: Principal, user_id: str) -> User:
        """A user of the manager's tenant (active or not) that ``manager`` may manage."""
        row = await self.db.pool.fetchrow(
            "SELECT * FROM hub_users WHERE tenant_id = $1 AND user_id = $2", manager.tenant_id,
            user_id)
        if row is None:
            raise NotFound(f"no user {user_id} in this tenant")
        user = _user(row)
        check_manage_user(manager, user.user_id, user.role)
        return user

    async def add_user(self, manager: Principal, email: str, password: str, role: Role,
                       full_name: str, team_id: str | None) -> User:
        """A new account in the manager's tenant, with a role below the manager's own."""
        check_grant_role(manager, role)
        _check_password(password)
        row = await self.db.pool.fetchrow(
            "INSERT INTO hub_users (tenant_id, user_id, email, full_name, password_hash, role,"
            " team_id) VALUES ($1, $2, lower($3), $4, $5, $6, $7) ON CONFLICT (tenant_id, email)"
            " DO NOTHING RETURNING *", manager.tenant_id, new_id(), email, full_name,
            await self._hash(password), role.value, team_id)
        if row is None:
            raise Conflict(f"{email} already has an account in this tenant")
        await audit.record(self.db.pool, manager.tenant_id, "user.create",
                           user_id=manager.user_id, target=row["user_id"],
                           detail={"email": row["email"], "role": role.value, "team_id": team_id})
        return _user(row)

    async def change(self, manager: Principal, user_id: str, *, role: Role | None = None,
                     team_id: str | None = None, clear_team: bool = False,
                     full_name: str | None = None) -> User:
        """Change a user's role, team or name; a new role or team ends their tokens and closes
        their open sync sessions on every hub (they reconnect with the new scope)."""
        user = await self.account(manager, user_id)
        if role is not None and role is not user.role:
            check_grant_role(manager, role)
            if user.user_id == manager.user_id:
                raise PermissionDenied("nobody changes their own role", code="role_required")
        new_team = None if clear_team else (team_id if team_id is not None else user.team_id)
        new_role = role or user.role
        rescope = (new_role, new_team) != (user.role, user.team_id)
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE hub_users u SET role = $3, team_id = $4, full_name = $5, "
                "token_version = token_version + $6::int, scope_seq = CASE WHEN $6::int = 1 THEN"
                " (SELECT last_seq FROM hub_tenants t WHERE t.tenant_id = u.tenant_id) ELSE "
                "scope_seq END WHERE tenant_id = $1 AND user_id = $2 RETURNING *",
                user.tenant_id, user.user_id, new_role.value, new_team,
                full_name or user.full_name, int(rescope))
            if rescope:
                await _announce(conn, user, "scope")
            await audit.record(conn, user.tenant_id, "user.change", user_id=manager.user_id,
                               target=user.user_id, detail={
                                   "role": [user.role.value, new_role.value],
                                   "team_id": [user.team_id, new_team],
                                   "full_name": [user.full_name, row["full_name"]]})
        return _user(row)

    async def set_active(self, manager: Principal, user_id: str, active: bool) -> User:
        """Disable (tokens end, sessions close on every hub, devices refused) or re-enable."""
        user = await self.account(manager, user_id)
        if user.user_id == manager.user_id:
            raise PermissionDenied("nobody disables their own account", code="role_required")
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE hub_users SET active = $3, token_version = token_version + 1 "
                "WHERE tenant_id = $1 AND user_id = $2 RETURNING *", user.tenant_id,
                user.user_id, active)
            await _announce(conn, user, "active" if active else "disabled")
            await audit.record(conn, user.tenant_id, "user.enable" if active else "user.disable",
                               user_id=manager.user_id, target=user.user_id)
        return _user(row)

    async def reset_password(self, manager: Principal, user_id: str, password: str) -> None:
        """Set a user's password (a manager's reset); their tokens end."""
        user = await self.account(manager, user_id)
        await self._set_password(user, password)
        await audit.record(self.db.pool, user.tenant_id, "user.password_reset",
                           user_id=manager.user_id, target=user.user_id)

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        """The caller changes their own password; every token of theirs ends."""
        row = await self.db.pool.fetchrow(
            "SELECT * FROM hub_users WHERE tenant_id = $1 AND user_id = $2 AND active",
            principal.tenant_id, principal.user_id)
        if row is None or not await self._verify(row["password_hash"], current):
            raise AuthError("the current password is wrong", code="bad_credentials")
        await self._set_password(_user(row), new)
        await audit.record(self.db.pool, principal.tenant_id, "password.change",
                           user_id=principal.user_id, target=principal.user_id)

    async def _set_password(self, user: User, password: str) -> None:
        _check_password(password)
        await self.db.pool.execute(
            "UPDATE hub_users SET password_hash = $3, token_version = token_version + 1 "
            "WHERE tenant_id = $1 AND user_id = $2", user.tenant_id, user.user_id,
            await self._hash(password))

    async def logout(self, principal: Principal) -> None:
        """End every access and refresh token of the caller (devices stay paired)."""
        await self._bump(principal.tenant_id, principal.user_id)
        await audit.record(self.db.pool, principal.tenant_id, "logout",
                           user_id=principal.user_id, target=principal.user_id)

    async def _bump(self, tenant_id: str, user_id: str) -> None:
        await self.db.pool.execute(
            "UPDATE hub_users SET token_version = token_version + 1 WHERE tenant_id = $1 AND "
            "user_id = $2", tenant_id, user_id)

    async def users(self, tenant_id: str) -> list[User]:
        rows = await self.db.pool.fetch(
            "SELECT * FROM hub_users WHERE tenant_id = $1 ORDER BY full_name", tenant_id
        )
        return [_user(r) for r in rows]

    # --- devices ------------------------------------------------------------------------------

    async def issue_pairing_code(
        self, admin: Principal, user_id: str, device_kind: str, ttl_s: int
    ) -> str:
        """A one-time code that pairs one device to ``user_id``, for whoever may manage that
        user's account (`hub.policy.check_manage_user`)."""
        if not admin.is_manager:
            raise PermissionDenied("only an ADMIN or SALES_DIRECTOR may issue pairing codes",
                                   code="role_required")
        target = await self.user(admin.tenant_id, user_id)
        check_manage_user(admin, target.user_id, target.role)
        code = new_pairing_code()
        await self.db.pool.execute(
            "INSERT INTO hub_pairing_codes (tenant_id, code_hash, user_id, device_kind,"
            " created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            admin.tenant_id, pairing_code_hash(code), user_id, device_kind, admin.user_id,
            datetime.now(UTC) + timedelta(seconds=ttl_s),
        )
        await audit.record(self.db.pool, admin.tenant_id, "device.pairing_code",
                           user_id=admin.user_id, target=user_id,
                           detail={"device_kind": device_kind, "ttl_s": ttl_s})
        return code

    async def pair(self, code: str, public_key: bytes, name: str) -> Device:
        """Redeem a pairing code once: registers the device's Ed25519 public key."""
        if len(public_key) != 32:
            raise AuthError("public key must be 32 raw Ed25519 bytes", code="bad_key")
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE hub_pairing_codes SET used_at = now() WHERE code_hash = $1 AND"
                " used_at IS NULL AND expires_at > now() RETURNING *", pairing_code_hash(code),
            )
            if row is None:
                raise AuthError("pairing code is unknown, used or expired; ask an admin for a"
                                " new one", code="bad_pairing_code")
            device = await conn.fetchrow(
                "INSERT INTO hub_devices (tenant_id, device_id, user_id, name, kind, public_key)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *", row["tenant_id"], new_id(),
                row["user_id"], name[:100] or "device", row["device_kind"], public_key,
            )
            await audit.record(conn, row["tenant_id"], "device.pair", user_id=row["user_id"],
                               target=device["device_id"], device_id=device["device_id"],
                               detail={"name": device["name"], "kind": device["kind"],
                                       "code_issued_by": row["created_by"]})
        return _device(device)

    async def device(self, device_id: str) -> Device:
        row = await self.db.pool.fetchrow("SELECT * FROM hub_devices WHERE device_id = $1",
                                          device_id)
        if row is None:
            raise AuthError("unknown device; pair it again", code="unknown_device")
        return _device(row)

    async def devices(self, tenant_id: str) -> list[asyncpg.Record]:
        return await self.db.pool.fetch(
            "SELECT d.*, u.full_name AS user_name, t.last_seq - d.cursor AS pending "
            "FROM hub_devices d JOIN hub_users u USING (tenant_id, user_id) "
            "JOIN hub_tenants t USING (tenant_id) WHERE d.tenant_id = $1 ORDER BY d.paired_at",
            tenant_id,
        )

    async def revoke(self, admin: Principal, device_id: str) -> None:
        """Revoke a device, for whoever may manage its user's account (as pairing it)."""
        if not admin.is_manager:
            raise PermissionDenied("only an ADMIN or SALES_DIRECTOR may revoke devices",
                                   code="role_required")
        owner = await self.db.pool.fetchrow(
            "SELECT u.user_id, u.role FROM hub_devices d JOIN hub_users u USING (tenant_id, "
            "user_id) WHERE d.tenant_id = $1 AND d.device_id = $2", admin.tenant_id, device_id)
        if owner is None:
            raise NotFound(f"no device {device_id} in this tenant")
        check_manage_user(admin, owner["user_id"], Role(owner["role"]))
        await self.db.pool.execute(
            "UPDATE hub_devices SET status = 'revoked', revoked_at = now() "
            "WHERE tenant_id = $1 AND device_id = $2", admin.tenant_id, device_id,
        )
        await audit.record(self.db.pool, admin.tenant_id, "device.revoke",
                           user_id=admin.user_id, target=device_id, device_id=device_id)

    async def seen(self, device: Device, cursor: int) -> None:
        await self.db.pool.execute(
            "UPDATE hub_devices SET last_seen = now(), cursor = GREATEST(cursor, $3) "
            "WHERE tenant_id = $1 AND device_id = $2", device.tenant_id, device.device_id, cursor,
        )

    async def offence(self, device: Device, reason: str, max_offences: int, count: int = 1
                      ) -> bool:
        """Count ``count`` refused hostile updates (a push, for throttling); returns True when
        the device is now blocked."""
        row = await self.db.pool.fetchrow(
            "UPDATE hub_devices SET offences = offences + $5, last_push_at = now(), "
            "blocked_reason = CASE WHEN "
            "offences + $5 >= $3 THEN $4 ELSE blocked_reason END, status = CASE WHEN offences + $5"
            " >= $3 THEN 'blocked' ELSE status END WHERE tenant_id = $1 AND device_id = $2 "
            "RETURNING status", device.tenant_id, device.device_id, max_offences,
            f"blocked after {max_offences} refused unsafe updates (last: {reason})", count,
        )
        return row is not None and row["status"] == "blocked"

    async def throttled_push(self, device: Device, interval_s: float) -> bool:
        """Take a throttled device's push slot: False when it pushed less than ``interval_s``
        ago (on any session, on any hub)."""
        row = await self.db.pool.fetchrow(
            "UPDATE hub_devices SET last_push_at = now() WHERE tenant_id = $1 AND device_id = $2"
            " AND (last_push_at IS NULL OR last_push_at <= now() - make_interval(secs => $3))"
            " RETURNING 1", device.tenant_id, device.device_id, interval_s,
        )
        return row is not None

    async def bind_client_ids(self, device: Device, client_ids: tuple[int, ...]) -> None:
        """Bind CRDT client ids to the device at first use; another device's id is refused."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            for cid in client_ids:
                owner = await conn.fetchval(
                    "INSERT INTO hub_client_ids (tenant_id, client_id, device_id) VALUES "
                    "($1, $2, $3) ON CONFLICT (tenant_id, client_id) DO UPDATE SET "
                    "client_id = EXCLUDED.client_id RETURNING device_id",
                    device.tenant_id, cid, device.device_id,
                )
                if owner != device.device_id:
                    raise Conflict(f"CRDT client id {cid} belongs to another device; reinstall "
                                   "to get a fresh id", code="client_id_taken")

    async def bound_client_ids(self, tenant_id: str, device_id: str) -> set[int]:
        rows = await self.db.pool.fetch(
            "SELECT client_id FROM hub_client_ids WHERE tenant_id = $1 AND device_id = $2",
            tenant_id, device_id,
        )
        return {r["client_id"] for r in rows}


async def _announce(conn: asyncpg.Connection, user: User, change: str) -> None:
    """Tell every hub (after commit) that this user's sessions must close."""
    await conn.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL,
                       f"user:{change}:{user.tenant_id}:{user.user_id}")
