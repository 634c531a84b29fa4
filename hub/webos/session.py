"""The WebOS session cookie: a signed, HttpOnly, SameSite=Lax cookie naming an account of
`hub.accounts`, turned back into the same `Principal` the REST API uses; and the per-session
CSRF token every form POST carries.

The cookie holds the tenant, the user, the account's token version and a random session id,
signed (HS256) with a key derived from the hub's token secret, so it is not a bearer token for
the API. It is checked against the account on every request: a logout, a password change or
reset, a role or team change and disabling end the session at once, exactly like API tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Annotated

import jwt
from fastapi import Depends, Request, Response

from core.errors import AuthError, PermissionDenied
from core.identity import Principal
from hub.accounts import User
from hub.service import Hub

COOKIE_NAME = "velocity_session"
SESSION_TTL_S = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_ALGORITHM = "HS256"


def _session_key(hub: Hub) -> bytes:
    """The cookie-signing key: derived from the token secret, distinct from it."""
    return hmac.new(hub.secret_key.encode(), b"velocity-webos-session", hashlib.sha256).digest()


def issue_cookie(hub: Hub, user: User, ttl_s: int = SESSION_TTL_S) -> str:
    """A new session cookie value for ``user`` (a fresh session id, hence a fresh CSRF token)."""
    now = int(time.time())
    claims = {"sub": user.user_id, "tid": user.tenant_id, "ver": user.token_version,
              "sid": secrets.token_urlsafe(18), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, _session_key(hub), algorithm=_ALGORITHM)


def set_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(COOKIE_NAME, value, max_age=SESSION_TTL_S, httponly=True,
                        samesite="lax", secure=secure, path="/")


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")


def _claims(hub: Hub, cookie: str | None) -> dict[str, object]:
    if not cookie:
        raise AuthError("log in to use the WebOS", code="no_session")
    try:
        claims: dict[str, object] = jwt.decode(
            cookie, _session_key(hub), algorithms=[_ALGORITHM],
            options={"require": ["exp", "sub", "tid", "ver", "sid"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("your session expired; log in again", code="session_expired") from None
    except jwt.InvalidTokenError:
        raise AuthError("invalid session; log in again", code="session_invalid") from None
    return claims


async def principal_from_cookie(hub: Hub, cookie: str | None) -> Principal:
    """The principal behind a session cookie, exactly as `hub.api.deps.current_principal` gives
    it for a bearer token: the account must exist, be active and still be at the cookie's token
    version (else `AuthError`)."""
    claims = _claims(hub, cookie)
    user = await hub.accounts.caller(str(claims["tid"]), str(claims["sub"]))
    if user.token_version != claims["ver"]:
        raise AuthError("your session ended (logout, password or role change); log in again",
                        code="token_revoked")
    return user.principal


async def page_principal(request: Request) -> Principal:
    """Dependency of every WebOS page: the signed-in principal (an `AuthError` otherwise, which
    WebOS pages answer with a redirect to the login page)."""
    hub: Hub = request.app.state.hub
    principal = await principal_from_cookie(hub, request.cookies.get(COOKIE_NAME))
    request.state.principal = principal
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def csrf_token(hub: Hub, cookie: str | None) -> str:
    """The CSRF token of the session in ``cookie`` (empty without a valid session)."""
    try:
        sid = str(_claims(hub, cookie)["sid"])
    except AuthError:
        return ""
    return hmac.new(_session_key(hub), b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse (403 ``csrf``) a POST whose token (form field or header) is not its session's."""
    hub: Hub = request.app.state.hub
    expected = csrf_token(hub, request.cookies.get(COOKIE_NAME))
    given = submitted or request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected, given):
        raise PermissionDenied("the form expired or came from another site; reload the page "
                               "and try again", code="csrf")


async def csrf_form(request: Request) -> dict[str, str]:
    """Dependency of every WebOS form POST: the submitted form, once its CSRF token checked."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, values.get(CSRF_FIELD))
    return values


CsrfForm = Annotated[dict[str, str], Depends(csrf_form)]
