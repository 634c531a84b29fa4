"""Login, the current user, users of the tenant, device pairing and revocation."""

from __future__ import annotations

import base64

from fastapi import APIRouter
from pydantic import BaseModel, Field

from core.auth import issue_token
from core.errors import AuthError
from hub.accounts import User
from hub.api.deps import HubDep, ManagerDep, PrincipalDep

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

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(tenant_id=user.tenant_id, user_id=user.user_id, email=user.email,
                   full_name=user.full_name, role=user.role.value, team_id=user.team_id)


class LoginOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    user: UserOut


@router.post("/auth/login")
async def login(body: LoginIn, hub: HubDep) -> LoginOut:
    user = await hub.accounts.login(body.email, body.password)
    token = issue_token(user.principal, hub.secret_key, hub.settings.token_ttl_s)
    return LoginOut(access_token=token, user=UserOut.of(user))


@router.get("/auth/me")
async def me(principal: PrincipalDep, hub: HubDep) -> UserOut:
    return UserOut.of(await hub.accounts.caller(principal.tenant_id, principal.user_id))


@router.get("/auth/users")
async def users(principal: ManagerDep, hub: HubDep) -> list[UserOut]:
    return [UserOut.of(u) for u in await hub.accounts.users(principal.tenant_id)]


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
