"""Request dependencies: the hub, the authenticated principal, role gates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.auth import read_token
from core.errors import AuthError, PermissionDenied
from core.identity import Principal, Role
from hub.service import Hub

_bearer = HTTPBearer(auto_error=False)


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


async def current_principal(
    hub: HubDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from a bearer token; the user must still exist and be active."""
    if credentials is None:
        raise AuthError("missing bearer token; POST /api/auth/login first", code="no_token")
    claims = read_token(credentials.credentials, hub.secret_key)
    user = await hub.accounts.caller(claims.principal.tenant_id, claims.principal.user_id)
    if user.token_version != claims.version:
        raise AuthError("token revoked (logout, password or role change); log in again",
                        code="token_revoked")
    return user.principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only the given roles."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise PermissionDenied(
                f"requires role {' or '.join(r.value for r in roles)}", code="role_required"
            )
        return principal

    return check


ManagerDep = Annotated[Principal, Depends(require(Role.ADMIN, Role.SALES_DIRECTOR))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
