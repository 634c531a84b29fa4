"""Tenants, users, devices, pairing codes and CRDT client-id bindings: the rules (passwords,
throttling, who may manage whom, what is audited) over their stores (`hub.storage.accounts`,
`hub.storage.devices`).

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
from hub.database import Database
from hub.policy import check_grant_role, check_manage_user, check_own_account
from hub.storage.accounts import AccountStore
from hub.storage.audit import AuditLog, Entry
from hub.storage.devices import DeviceRegistry

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
        self._users, self._devices = AccountStore(db), DeviceRegistry(db)
        self._audit = AuditLog(db)
        self._hashing = asyncio.Semaphore(HASHING_THREADS)

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(hash_password, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(verify_password, password_hash, password)

    async def ensure_tenant(self, tenant_id: str, name: str) -> None:
        await self._users.ensure_tenant(tenant_id, name)

    async def create_user(
        self, tenant_id: str, email: str, password: str, role: Role, full_name: str,
        *, team_id: str | None = None, user_id: str | None = None,
    ) -> User:
        """Create a user (idempotent on tenant + email: an existing user is returned as is)."""
        row = await self._users.add_user(tenant_id, user_id or new_id(), email, full_name,
                                         await self._hash(password), role.value, team_id)
        if row is None:
            row = await self._users.user_by_email(tenant_id, email)
        else:  # an operator's account (terminal, seeds): no user of the hub made it
            await self._audit.record(tenant_id, "user.create", user_id=None,
                                     target=row["user_id"],
                                     detail={"email": row["email"], "role": role.value,
                                             "team_id": team_id})
        assert row is not None  # the insert met this very user
        return _user(row)

    async def login(self, email: str, password: str, address: str = "local",
                    limits: LoginLimits | None = None) -> User:
        """The user with this email and password. With ``limits`` (every network login):
        refused (429) while the account or the source address has too many recent failures.
        An unknown email costs the same time as a wrong password."""
        keys = (f"account:{email.lower()}", f"address:{address}")
        if limits is not None:
            await self._check_throttle(keys, (limits.per_account, limits.per_address),
                                       limits.window_s)
        rows = await self._users.active_users_by_email(email)
        found = None
        for row in rows or [None]:
            if await self._verify(row["password_hash"] if row else decoy_hash(), password):
                found = row
                break
        if found is None:
            failures = None
            if limits is not None:
                failures = (await self._users.count_failure(keys, limits.window_s))[keys[0]]
            await self._audit.record_for_email(email, "login.failed", {"address": address})
            if limits is not None and failures == limits.per_account:  # once, as it locks
                await self._audit.record_for_email(email, "login.locked", {
                    "address": address, "failures": failures, "window_s": limits.window_s})
            raise AuthError("wrong email or password", code="bad_credentials")
        if limits is not None:
            await self._users.clear_failures(keys[0])
        await self._audit.record(found["tenant_id"], "login", user_id=found["user_id"],
                                 target=found["user_id"], detail={"address": address})
        return _user(found)

    async def _check_throttle(self, keys: tuple[str, str], maxima: tuple[int, int],
                              window_s: int) -> None:
        for row in await self._users.recent_failures(keys, window_s):
            limit = maxima[keys.index(row["key"])]
            if row["failures"] >= limit:
                what = "account" if row["key"] == keys[0] else "address"
                wait = max(1, int(row["left_s"]) + 1)
                raise Throttled(f"too many failed logins for this {what}; try again in {wait} s"
                                " or ask an admin to reset the password", retry_after_s=wait)

    async def issue_refresh(self, user: User, ttl_s: int) -> str:
        """A one-use refresh token for ``user`` at their current token version."""
        token = new_refresh_token()
        await self._users.add_refresh_token(user.tenant_id, refresh_token_hash(token),
                                            user.user_id, user.token_version, ttl_s)
        return token

    async def redeem_refresh(self, token: str) -> User:
        """The user of a valid refresh token, which is used up (the caller issues a new one).
        A token used twice ends every session of its user (it was stolen or replayed)."""
        digest = refresh_token_hash(token)
        row = await self._users.use_refresh_token(digest)
        if row is None:
            used = await self._users.refresh_token_owner(digest)
            if used is None:
                raise AuthError("unknown refresh token; log in again", code="token_invalid")
            await self._users.end_tokens(used["tenant_id"], used["user_id"])
            raise AuthError("refresh token already used; log in again", code="token_reused")
        user = await self.caller(row["tenant_id"], row["user_id"])
        if row["expires_at"] <= datetime.now(UTC) or row["token_version"] != user.token_version:
            raise AuthError("refresh token expired or revoked; log in again",
                            code="token_revoked")
        return user

    async def user(self, tenant_id: str, user_id: str) -> User:
        """An active user; a missing or disabled one is a `NotFound`."""
        row = await self._users.user(tenant_id, user_id, active_only=True)
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
        row = await self._users.user_by_email(tenant_id, email)
        if row is None:
            raise NotFound(f"no user {email} in tenant {tenant_id}")
        return str(row["user_id"])

    async def account(self, manager: Principal, user_id: str) -> User:
        """A user of the manager's tenant (active or not) that ``manager`` may manage."""
        row = await self._users.user(manager.tenant_id, user_id, active_only=False)
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
        row = await self._users.add_user(manager.tenant_id, new_id(), email, full_name,
                                         await self._hash(password), role.value, team_id)
        if row is None:
            raise Conflict(f"{email} already has an account in this tenant")
        await self._audit.record(manager.tenant_id, "user.create", user_id=manager.user_id,
                                 target=row["user_id"], detail={
                                     "email": row["email"], "role": role.value,
                                     "team_id": team_id})
        return _user(row)

    async def change(self, manager: Principal, user_id: str, *, role: Role | None = None,
                     team_id: str | None = None, clear_team: bool = False,
                     full_name: str | None = None) -> User:
        """Change a user's role, team or name; a new role or team ends their tokens and closes
        their open sync sessions on every hub (they reconnect with the new scope)."""
        user = await self.account(manager, user_id)
        if role is not None and role is not user.role:
            check_grant_role(manager, role)
            check_own_account(manager, user.user_id, "role")
        new_team = None if clear_team else (team_id if team_id is not None else user.team_id)
        new_role = role or user.role
        new_name = full_name or user.full_name
        rescope = (new_role, new_team) != (user.role, user.team_id)
        row = await self._users.change_user(
            user.tenant_id, user.user_id, new_role.value, new_team, new_name, rescope=rescope,
            notice=_notice(user, "scope") if rescope else None,
            entry=Entry("user.change", manager.user_id, target=user.user_id, detail={
                "role": [user.role.value, new_role.value], "team_id": [user.team_id, new_team],
                "full_name": [user.full_name, new_name]}))
        return _user(row)

    async def set_active(self, manager: Principal, user_id: str, active: bool) -> User:
        """Disable (tokens end, sessions close on every hub, devices refused) or re-enable."""
        user = await self.account(manager, user_id)
        check_own_account(manager, user.user_id, "disable")
        row = await self._users.set_active(
            user.tenant_id, user.user_id, active,
            notice=_notice(user, "active" if active else "disabled"),
            entry=Entry("user.enable" if active else "user.disable", manager.user_id,
                        target=user.user_id))
        return _user(row)

    async def reset_password(self, manager: Principal, user_id: str, password: str) -> None:
        """Set a user's password (a manager's reset); their tokens end."""
        user = await self.account(manager, user_id)
        await self._set_password(user, password)
        await self._audit.record(user.tenant_id, "user.password_reset",
                                 user_id=manager.user_id, target=user.user_id)

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        """The caller changes their own password; every token of theirs ends."""
        row = await self._users.user(principal.tenant_id, principal.user_id, active_only=True)
        if row is None or not await self._verify(row["password_hash"], current):
            raise AuthError("the current password is wrong", code="bad_credentials")
        await self._set_password(_user(row), new)
        await self._audit.record(principal.tenant_id, "password.change",
                                 user_id=principal.user_id, target=principal.user_id)

    async def _set_password(self, user: User, password: str) -> None:
        _check_password(password)
        await self._users.set_password_hash(user.tenant_id, user.user_id,
                                            await self._hash(password))

    async def logout(self, principal: Principal) -> None:
        """End every access and refresh token of the caller (devices stay paired)."""
        await self._users.end_tokens(principal.tenant_id, principal.user_id)
        await self._audit.record(principal.tenant_id, "logout", user_id=principal.user_id,
                                 target=principal.user_id)

    async def users(self, tenant_id: str) -> list[User]:
        return [_user(r) for r in await self._users.users(tenant_id)]

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
        await self._devices.add_pairing_code(
            admin.tenant_id, pairing_code_hash(code), user_id, device_kind, admin.user_id,
            datetime.now(UTC) + timedelta(seconds=ttl_s))
        await self._audit.record(admin.tenant_id, "device.pairing_code", user_id=admin.user_id,
                                 target=user_id,
                                 detail={"device_kind": device_kind, "ttl_s": ttl_s})
        return code

    async def pair(self, code: str, public_key: bytes, name: str) -> Device:
        """Redeem a pairing code once: registers the device's Ed25519 public key."""
        if len(public_key) != 32:
            raise AuthError("public key must be 32 raw Ed25519 bytes", code="bad_key")
        device = await self._devices.pair(
            pairing_code_hash(code), new_id(), name[:100] or "device", public_key,
            lambda code_row, device: Entry(
                "device.pair", code_row["user_id"], target=device["device_id"],
                device_id=device["device_id"], detail={
                    "name": device["name"], "kind": device["kind"],
                    "code_issued_by": code_row["created_by"]}))
        if device is None:
            raise AuthError("pairing code is unknown, used or expired; ask an admin for a"
                            " new one", code="bad_pairing_code")
        return _device(device)

    async def device(self, device_id: str) -> Device:
        row = await self._devices.device(device_id)
        if row is None:
            raise AuthError("unknown device; pair it again", code="unknown_device")
        return _device(row)

    async def devices(self, tenant_id: str) -> list[asyncpg.Record]:
        return await self._devices.installs(tenant_id)

    async def revoke(self, admin: Principal, device_id: str) -> None:
        """Revoke a device, for whoever may manage its user's account (as pairing it)."""
        if not admin.is_manager:
            raise PermissionDenied("only an ADMIN or SALES_DIRECTOR may revoke devices",
                                   code="role_required")
        owner = await self._devices.owner(admin.tenant_id, device_id)
        if owner is None:
            raise NotFound(f"no device {device_id} in this tenant")
        check_manage_user(admin, owner["user_id"], Role(owner["role"]))
        await self._devices.revoke(admin.tenant_id, device_id)
        await self._audit.record(admin.tenant_id, "device.revoke", user_id=admin.user_id,
                                 target=device_id, device_id=device_id)

    async def seen(self, device: Device, cursor: int) -> None:
        await self._devices.seen(device.tenant_id, device.device_id, cursor)

    async def offence(self, device: Device, reason: str, max_offences: int, count: int = 1
                      ) -> bool:
        """Count ``count`` refused hostile updates (a push, for throttling); returns True when
        the device is now blocked."""
        status = await self._devices.offence(
            device.tenant_id, device.device_id, count, max_offences,
            f"blocked after {max_offences} refused unsafe updates (last: {reason})")
        return status == "blocked"

    async def throttled_push(self, device: Device, interval_s: float) -> bool:
        """Take a throttled device's push slot: False when it pushed less than ``interval_s``
        ago (on any session, on any hub)."""
        return await self._devices.take_push_slot(device.tenant_id, device.device_id,
                                                  interval_s)

    async def bind_client_ids(self, device: Device, client_ids: tuple[int, ...]) -> None:
        """Bind CRDT client ids to the device at first use; another device's id is refused."""
        taken = await self._devices.bind_client_ids(device.tenant_id, device.device_id,
                                                    client_ids)
        if taken is not None:
            raise Conflict(f"CRDT client id {taken} belongs to another device; reinstall "
                           "to get a fresh id", code="client_id_taken")

    async def bound_client_ids(self, tenant_id: str, device_id: str) -> set[int]:
        return await self._devices.bound_client_ids(tenant_id, device_id)


def _notice(user: User, change: str) -> tuple[str, str]:
    """The control-channel notice that makes every hub close this user's sessions (sent when
    the change commits)."""
    return CONTROL_CHANNEL, f"user:{change}:{user.tenant_id}:{user.user_id}"
