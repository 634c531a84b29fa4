"""The hub's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket

from gpu_hub.api import mount as mount_gpu_front
from hub.api import (
    admin_routes,
    audit_routes,
    auth_routes,
    comms,
    crm,
    devices,
    errors,
    events,
    imports,
    inventory,
    mobile_edge,
    oracle,
    oracle_prompts,
    pairing_qr,
    pipeline,
    sentinel,
)
from hub.api.deps import current_principal
from hub.api.nul_guard import RefuseNul
from hub.service import Hub
from hub.sync_endpoint import SyncSession
from hub.webos import mount as mount_webos
from hub.yjs_endpoint import YJS_PATH, YjsRooms, YjsSession

SYNC_PATH = "/api/sync/ws"


def create_app(hub: Hub) -> FastAPI:
    """An app serving an already-started hub (the caller owns its lifetime)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.hub = hub
        yield

    app = FastAPI(title="Velocity Edge hub", version="0.1.0", lifespan=lifespan)
    app.state.hub = hub
    app.state.gpu = hub.gpu
    errors.install(app)
    app.add_middleware(RefuseNul)
    app.include_router(admin_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(crm.router)
    app.include_router(comms.router)
    app.include_router(sentinel.router)
    app.include_router(oracle.router)
    app.include_router(pairing_qr.router)
    app.include_router(oracle_prompts.router)
    app.include_router(pipeline.router)
    app.include_router(audit_routes.router)
    app.include_router(devices.router)
    app.include_router(events.router)
    app.include_router(inventory.router)
    app.include_router(imports.router)
    app.include_router(mobile_edge.router)
    mount_gpu_front(app, current_principal)
    mount_webos(app)

    @app.websocket(SYNC_PATH)
    async def sync_endpoint(ws: WebSocket) -> None:
        await SyncSession(ws, hub).run()

    rooms = YjsRooms(hub.awareness)

    @app.websocket(YJS_PATH)
    async def yjs_endpoint(ws: WebSocket, page_id: str) -> None:
        await YjsSession(ws, hub, rooms, page_id).run()

    return app
