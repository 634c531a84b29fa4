"""The WebOS: the hub's server-rendered web cockpit for central staff (`mount`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hub.webos import auth_pages, dashboard_page
from hub.webos.oracle import routes as oracle_pages
from hub.webos.render import STATIC_DIR


def mount(app: FastAPI) -> None:
    """Serve the WebOS pages and their static files (``/static``) from ``app``."""
    app.include_router(auth_pages.router)
    app.include_router(dashboard_page.router)
    app.include_router(oracle_pages.router)
    app.include_router(oracle_pages.live_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="webos-static")
