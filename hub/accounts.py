"""Tenants, users, devices, pairing codes and CRDT client-id bindings in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from core.auth import hash_password, new_pairing_code, pairing_code_hash, verify_password
from core.errors import AuthError, Conflict, NotFound, PermissionDenied
from core.identity import Principal, Role
from core.ids import new_id
from hub.database import Database
from hub.policy import check_manage_user


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

    @property
    def principal(self) -> Principal:
        return Principal(self.tenant_id, self.user_id, self.role, self.team_id)


def _user(row: asyncpg.Record) -> User:
    return User(row["tenant_id"], row["user_id"], row["email"], row["full_name"],
                Role(row["role"]), row["team_id"])


def _device(row: asyncpg.Record) -> Device:
    return Device(row["tenant_id"], row["device_id"], row["user_id"], row["name"], row["kind"],
                  bytes(row["public_key"]), row["status"], row["blocked_reason"],
                  row["offences"])


class Accounts:
    """Identity and device registry."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
            tenant_id, user_id or new_id(), email, full_name, hash_password(password),
            role.value, team_id,
        )
        if row is None:
            row = await self.db.pool.fetchrow(
                "SELECT * FROM hub_users WHERE tenant_id = $1 AND email = lower($2)",
                tenant_id, email,
            )
        return _user(row)

    async def login(self, email: str, password: str) -> User:
        rows = await self.db.pool.fetch(
            "SELECT * FROM hub_users WHERE lower(email) = lower($1) AND active", email
        )
        for row in rows:
            if verify_password(row["password_hash"], password):
                return _user(row)
        raise AuthError("wrong email or password", code="bad_credentials")

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
        if not admin.is_manager:
            raise PermissionDenied("only an ADMIN or SALES_DIRECTOR may revoke devices")
        status = await self.db.pool.execute(
            "UPDATE hub_devices SET status = 'revoked', revoked_at = now() "
            "WHERE tenant_id = $1 AND device_id = $2", admin.tenant_id, device_id,
        )
        if status.endswith(" 0"):
            raise NotFound(f"no device {device_id} in this tenant")

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
