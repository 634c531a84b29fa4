"""The WebOS: the hub's server-rendered web cockpit for central staff (`mount`)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from hub.webos import (
    admin_pages,
    auth_pages,
    crm_pages,
    dashboard_page,
    live,
    sentinel_page,
)
from hub.webos.oracle import routes as oracle_pages
from hub.webos.render import STATIC_DIR

ROUTERS: tuple[APIRouter, ...] = (auth_pages.router, dashboard_page.router, crm_pages.router,
                                  sentinel_page.router, admin_pages.router, live.router,
                                  oracle_pages.router)
"""Every router of WebOS pages (their routes are `hub.webos.render.PageRoute`s)."""


def mount(app: FastAPI) -> None:
    """Serve the WebOS pages and their static files (``/static``) from ``app``."""
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(oracle_pages.live_router)  # the live script's calls: JSON, not pages
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="webos-static")
