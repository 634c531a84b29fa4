"""Logging in and out of the WebOS with an account of `hub.accounts` (same throttling as the
API's login route)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from core.errors import AuthError, PermissionDenied, VelocityError
from hub.accounts import LoginLimits
from hub.service import Hub
from hub.webos.render import PageRoute, redirect, render
from hub.webos.session import (
    COOKIE_NAME,
    CsrfForm,
    PagePrincipal,
    clear_cookie,
    issue_cookie,
    principal_from_cookie,
    set_cookie,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LOGIN_NONCE_COOKIE = "velocity_login"
"""A double-submit nonce for the login form (there is no session to tie a CSRF token to yet)."""


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never ``//host`` or a scheme): an open redirect otherwise."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/dashboard"


@router.get("/")
async def home() -> Response:
    return redirect("/dashboard")


@router.get("/login")
async def login_page(request: Request, next: str = "") -> Response:
    hub: Hub = request.app.state.hub
    try:
        await principal_from_cookie(hub, request.cookies.get(COOKIE_NAME))
        return redirect(_safe_next(next))
    except AuthError:
        pass
    nonce = secrets.token_urlsafe(18)
    response = render(request, "login.html", next=_safe_next(next), email="", nonce=nonce)
    response.set_cookie(LOGIN_NONCE_COOKIE, nonce, max_age=3600, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/login")
    return response


@router.post("/login")
async def login(request: Request, email: Annotated[str, Form(max_length=254)],
                password: Annotated[str, Form(max_length=200)],
                nonce: Annotated[str, Form(max_length=64)] = "",
                next: Annotated[str, Form(max_length=500)] = "") -> Response:
    hub: Hub = request.app.state.hub
    expected = request.cookies.get(LOGIN_NONCE_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, nonce):
        return redirect("/login", err=PermissionDenied(
            "the login form expired; please try again", code="csrf").message)
    settings = hub.settings
    limits = LoginLimits(settings.login_failures_per_account,
                         settings.login_failures_per_address, settings.login_window_s)
    address = request.client.host if request.client else "unknown"
    try:
        user = await hub.accounts.login(email, password, address, limits)
    except VelocityError as exc:
        fresh = secrets.token_urlsafe(18)
        page = render(request, "login.html", status_code=401 if isinstance(
            exc, AuthError) else 429, next=_safe_next(next), email=email, nonce=fresh,
            login_error=exc.message)
        page.set_cookie(LOGIN_NONCE_COOKIE, fresh, max_age=3600, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/login")
        return page
    response = redirect(_safe_next(next))
    set_cookie(response, issue_cookie(hub, user), secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_NONCE_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, principal: PagePrincipal, form: CsrfForm) -> Response:
    """End the session and, as the API's logout does, every token of the account."""
    hub: Hub = request.app.state.hub
    await hub.accounts.logout(principal)
    response = redirect("/login", msg="You are logged out.")
    clear_cookie(response)
    return response
