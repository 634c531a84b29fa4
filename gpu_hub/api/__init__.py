"""The GPU front's HTTP routes; the hub mounts them with `gpu_hub.api.mount`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from gpu_hub.api import admin_routes, deps, media_routes, oracle_routes, runtime_routes


def mount(app: FastAPI, principal: Callable[..., Any]) -> None:
    """Serve the GPU front's routes on ``app``; ``principal`` is the hub's dependency that
    authenticates a request (the GPU front does not know how)."""
    app.dependency_overrides[deps.principal] = principal
    app.include_router(oracle_routes.router)
    app.include_router(runtime_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(media_routes.router)
