"""Login, tokens, the current user, managing the tenant's accounts, device pairing and
revocation (who may do what: `hub.policy`)."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from core.auth import issue_token
from core.errors import AuthError
from core.identity import Role
from hub.accounts import LoginLimits, User
from hub.api.deps import HubDep, ManagerDep, PrincipalDep
from hub.service import Hub

router = APIRouter(prefix="/api", tags=["auth"])


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    tenant_id: str
    user_id: str
    email: str
    full_name: str
    role: str
    team_id: str | None
    active: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(tenant_id=user.tenant_id, user_id=user.user_id, email=user.email,
                   full_name=user.full_name, role=user.role.value, team_id=user.team_id,
                   active=user.active)


class LoginOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in_s: int
    user: UserOut


async def _tokens(hub: Hub, user: User) -> LoginOut:
    settings = hub.settings
    return LoginOut(
        access_token=issue_token(user.principal, hub.secret_key, settings.token_ttl_s,
                                 user.token_version),
        refresh_token=await hub.accounts.issue_refresh(user, settings.refresh_ttl_s),
        expires_in_s=settings.token_ttl_s, user=UserOut.of(user))


@router.post("/auth/login")
async def login(body: LoginIn, request: Request, hub: HubDep) -> LoginOut:
    """A short-lived access token and a one-use refresh token. Too many failures for the
    account or the source address within the window: 429 with ``Retry-After``."""
    settings = hub.settings
    limits = LoginLimits(settings.login_failures_per_account,
                         settings.login_failures_per_address, settings.login_window_s)
    address = request.client.host if request.client else "unknown"
    user = await hub.accounts.login(body.email, body.password, address, limits)
    return await _tokens(hub, user)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


@router.post("/auth/refresh")
async def refresh(body: RefreshIn, hub: HubDep) -> LoginOut:
    """A new access token and a new refresh token for a refresh token, which is used up."""
    return await _tokens(hub, await hub.accounts.redeem_refresh(body.refresh_token))


@router.post("/auth/logout")
async def logout(principal: PrincipalDep, hub: HubDep) -> dict[str, str]:
    """End every access and refresh token of the caller (paired devices stay paired)."""
    await hub.accounts.logout(principal)
    return {"status": "logged_out"}


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


@router.post("/auth/password")
async def change_password(body: PasswordChangeIn, principal: PrincipalDep, hub: HubDep
                          ) -> dict[str, str]:
    """Change the caller's own password; every token of theirs ends (log in again)."""
    await hub.accounts.change_password(principal, body.current_password, body.new_password)
    return {"status": "password_changed"}


@router.get("/auth/me")
async def me(principal: PrincipalDep, hub: HubDep) -> UserOut:
    return UserOut.of(await hub.accounts.caller(principal.tenant_id, principal.user_id))


@router.get("/auth/users")
async def users(principal: ManagerDep, hub: HubDep) -> list[UserOut]:
    return [UserOut.of(u) for u in await hub.accounts.users(principal.tenant_id)]


class NewUserIn(BaseModel):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=200)
    full_name: str = Field(min_length=1, max_length=200)
    role: Role = Role.JUNIOR_BROKER
    team_id: str | None = Field(None, max_length=64)


@router.post("/auth/users", status_code=201)
async def create_user(body: NewUserIn, principal: ManagerDep, hub: HubDep) -> UserOut:
    """A new account in the caller's tenant, with a role below the caller's (admins: any)."""
    return UserOut.of(await hub.accounts.add_user(principal, body.email, body.password,
                                                  body.role, body.full_name, body.team_id))


class UserChangeIn(BaseModel):
    role: Role | None = None
    team_id: str | None = Field(None, max_length=64)
    clear_team: bool = False
    full_name: str | None = Field(None, min_length=1, max_length=200)


@router.patch("/auth/users/{user_id}")
async def change_user(user_id: str, body: UserChangeIn, principal: ManagerDep, hub: HubDep
                      ) -> UserOut:
    """Change a user's role, team or name; a new role or team ends their tokens and closes their
    open sync sessions on every hub (they reconnect with the new scope)."""
    return UserOut.of(await hub.accounts.change(
        principal, user_id, role=body.role, team_id=body.team_id, clear_team=body.clear_team,
        full_name=body.full_name))


@router.post("/auth/users/{user_id}/disable")
async def disable_user(user_id: str, principal: ManagerDep, hub: HubDep) -> UserOut:
    """Disable an account: its tokens end, its open sync sessions close, its devices are
    refused until it is enabled again."""
    return UserOut.of(await hub.accounts.set_active(principal, user_id, False))


@router.post("/auth/users/{user_id}/enable")
async def enable_user(user_id: str, principal: ManagerDep, hub: HubDep) -> UserOut:
    return UserOut.of(await hub.accounts.set_active(principal, user_id, True))


class PasswordResetIn(BaseModel):
    password: str = Field(min_length=1, max_length=200)


@router.post("/auth/users/{user_id}/password")
async def reset_password(user_id: str, body: PasswordResetIn, principal: ManagerDep,
                         hub: HubDep) -> dict[str, str]:
    """Set another user's password (a reset); their tokens end."""
    await hub.accounts.reset_password(principal, user_id, body.password)
    return {"user_id": user_id, "status": "password_reset"}


class PairingCodeIn(BaseModel):
    user_id: str
    device_kind: str = Field("ipad", pattern="^(ipad|kiosk|desktop)$")


class PairingCodeOut(BaseModel):
    code: str
    expires_in_s: int


@router.post("/devices/pairing-codes", tags=["devices"])
async def pairing_code(body: PairingCodeIn, principal: ManagerDep, hub: HubDep) -> PairingCodeOut:
    ttl = hub.settings.pairing_code_ttl_s
    code = await hub.accounts.issue_pairing_code(principal, body.user_id, body.device_kind, ttl)
    return PairingCodeOut(code=code, expires_in_s=ttl)


class PairIn(BaseModel):
    code: str = Field(min_length=4, max_length=40)
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 public key")
    name: str = Field("device", max_length=100)


class PairOut(BaseModel):
    device_id: str
    tenant_id: str
    user_id: str
    kind: str


@router.post("/devices/pair", tags=["devices"])
async def pair(body: PairIn, hub: HubDep) -> PairOut:
    try:
        key = base64.b64decode(body.public_key, validate=True)
    except ValueError:
        raise AuthError("public_key is not base64", code="bad_key") from None
    device = await hub.accounts.pair(body.code, key, body.name)
    return PairOut(device_id=device.device_id, tenant_id=device.tenant_id,
                   user_id=device.user_id, kind=device.kind)


@router.post("/devices/{device_id}/revoke", tags=["devices"])
async def revoke(device_id: str, principal: ManagerDep, hub: HubDep) -> dict[str, str]:
    await hub.accounts.revoke(principal, device_id)
    await hub.revoke_device(device_id)
    return {"device_id": device_id, "status": "revoked"}
