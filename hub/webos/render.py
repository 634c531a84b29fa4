"""Rendering WebOS pages: the Jinja2 environment, the role-aware navigation, `render` and the
route class that turns errors into pages (a redirect to the login page, or an error page).

Templates are looked up in ``hub/webos/templates`` and then ``hub/webos/oracle/templates``;
every page extends ``base.html`` and fills its blocks ``title``, ``content`` and ``scripts``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from core.errors import AuthError, PermissionDenied, RecordInvalid, VelocityError
from core.identity import Principal
from hub.api.errors import status_for
from hub.service import Hub
from hub.webos.session import COOKIE_NAME, CSRF_FIELD, clear_cookie, csrf_token

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

env = Environment(
    loader=ChoiceLoader([FileSystemLoader(HERE / "templates"),
                         FileSystemLoader(HERE / "oracle" / "templates")]),
    autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str
    managers_only: bool = False


NAV: tuple[NavItem, ...] = (
    NavItem("/dashboard", "Dashboard"),
    NavItem("/crm/contacts", "Contacts"),
    NavItem("/crm/kanban", "Pipeline"),
    NavItem("/sentinel", "Sentinel"),
    NavItem("/oracle", "Oracle"),
    NavItem("/admin/devices", "Devices", managers_only=True),
    NavItem("/admin/users", "Users", managers_only=True),
    NavItem("/admin/audit", "Audit", managers_only=True),
    NavItem("/admin/gpu", "GPU", managers_only=True),
)
"""The navigation; ``managers_only`` items are shown to ADMINs and SALES_DIRECTORs only (the
pages themselves refuse everyone else, `hub.api.deps.require`)."""


def nav_for(principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    return [item for item in NAV if principal.is_manager or not item.managers_only]


def money(value: float | None) -> str:
    """Indian-rupee style short amounts: 1.2 Cr, 35 L, 80 K."""
    if value is None:
        return "—"
    for size, unit in ((1e7, "Cr"), (1e5, "L"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f}"


def _when(value: datetime | date | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value[:16].replace("T", " ")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def _label(value: object) -> str:
    """``SITE_VISIT`` → ``Site visit``."""
    return str(value or "—").replace("_", " ").capitalize()


def _audit_detail(detail: object) -> str:
    """An audit entry's detail (JSON text or a mapping) as ``key: value`` pairs."""
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return str(detail)[:200]
    if not isinstance(detail, dict):
        return ""
    return "; ".join(f"{k}: {v}" for k, v in detail.items())[:300]


env.filters.update(money=money, when=_when, label=_label, audit_detail=_audit_detail)


def render(request: Request, template: str, principal: Principal | None = None,
           status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``template`` with ``context`` plus what ``base.html`` needs (the principal, the
    navigation, the current path, the CSRF token, a flash message from ``?msg=``)."""
    hub: Hub = request.app.state.hub
    base = {
        "request": request, "principal": principal, "nav": nav_for(principal),
        "path": request.url.path, "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(hub, request.cookies.get(COOKIE_NAME)),
        "flash": request.query_params.get("msg", "")[:300],
        "flash_error": request.query_params.get("err", "")[:300],
    }
    html = env.get_template(template).render(**base, **context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def redirect(path: str, msg: str = "", err: str = "") -> RedirectResponse:
    """A 303 to ``path`` with a flash message (``msg``) or a refusal (``err``) to show there."""
    sep = "&" if "?" in path else "?"
    if msg:
        path += f"{sep}msg={quote(msg)}"
    elif err:
        path += f"{sep}err={quote(err)}"
    return RedirectResponse(path, status_code=303)


def error_page(request: Request, exc: VelocityError) -> Response:
    """A refused page: to the login page without a valid session, else a page naming why."""
    if isinstance(exc, AuthError) and not isinstance(exc, PermissionDenied):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        response: Response = redirect(f"/login?next={quote(target)}",
                                      err=exc.message if exc.code != "no_session" else "")
        clear_cookie(response)
        return response
    principal = getattr(request.state, "principal", None)
    return render(request, "error.html", principal, status_code=status_for(exc),
                  error=exc, status=status_for(exc))


def _invalid(exc: RequestValidationError) -> RecordInvalid:
    """A query or form that does not validate, as the error page shows it."""
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
                for e in exc.errors()][:10]
    return RecordInvalid("this address or form has a value the page cannot use",
                         problems=problems)


class PageRoute(APIRoute):
    """A route whose `VelocityError`s become pages instead of JSON (use it as the
    ``route_class`` of every WebOS router)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except VelocityError as exc:
                return error_page(request, exc)
            except RequestValidationError as exc:
                return error_page(request, _invalid(exc))

        return page_handler
