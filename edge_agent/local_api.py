"""The device's local API on loopback: what a broker needs offline, served from the replica."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from core.errors import (
    AuthError,
    ConfigError,
    Conflict,
    DiskFull,
    NotFound,
    PermissionDenied,
    RecordInvalid,
    StorageFailed,
    VelocityError,
)
from edge_agent.canvas_api import canvas_router
from edge_agent.comms_api import comms_router
from edge_agent.gpu_requests_api import gpu_requests_router
from edge_agent.inventory_api import inventory_router, pipeline_router
from edge_agent.mobile_edge_api import mobile_edge_local_router
from edge_agent.sentinel import KioskSentinel, SessionStart
from edge_agent.service import EdgeAgent
from schema.models import LeadStage

log = logging.getLogger(__name__)


class Values(BaseModel):
    values: dict[str, Any] = Field(description="Field values of the record")


class StageIn(BaseModel):
    stage: LeadStage


class RevokeIn(BaseModel):
    person_id: str | None = Field(None, max_length=64)
    session_id: str | None = Field(None, max_length=64)


def _status(exc: VelocityError) -> int:
    for kind, status in ((PermissionDenied, 403), (AuthError, 401), (NotFound, 404),
                         (RecordInvalid, 422), (ConfigError, 409), (Conflict, 409),
                         (DiskFull, 507), (StorageFailed, 503)):
        if isinstance(exc, kind):
            return status
    return 400


def create_local_app(agent: EdgeAgent) -> FastAPI:
    app = FastAPI(title="Velocity Edge — device API", version="0.1.0")

    @app.exception_handler(VelocityError)
    async def _errors(_r: Request, exc: VelocityError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.message},
                            status_code=_status(exc))

    @app.exception_handler(Exception)
    async def _bug(_r: Request, exc: Exception) -> JSONResponse:
        log.exception("local API request failed")
        return JSONResponse({"error": "internal", "detail": "the device agent failed on this "
                             "request; its log says why"}, status_code=500)

    def token_ok(presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(),
                                                             agent.token.encode())

    async def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if authorization is None or not token_ok(authorization.removeprefix("Bearer ")):
            raise AuthError("missing or wrong local token (see local.token in the data folder)")

    api = Depends(authorised)

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format (counts only: no record data, so no token)."""
        sync = agent.sync
        if sync is None:
            raise ConfigError("this agent runs without sync: nothing to measure")
        body = sync.metrics.render(pending=await agent.replica.pending_count(),
                                   cursor=await agent.replica.cursor(), online=sync.online)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/status", dependencies=[api])
    async def status() -> dict[str, Any]:
        return await agent.status()

    @app.get("/api/crm/contacts", dependencies=[api])
    async def contacts(q: str = "", limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        like = f"%{q.lower()}%"
        return await agent.replica.query(
            "SELECT id, full_name, primary_phone, email, city, segment, owner_id FROM "
            "temp.crm_people WHERE NOT deleted AND (? = '' OR lower(full_name) LIKE ? OR "
            "primary_phone LIKE ? OR lower(email) LIKE ?) ORDER BY full_name LIMIT ? OFFSET ?",
            (q, like, like, like, limit, offset),
        )

    @app.get("/api/crm/client-360/{person_id}", dependencies=[api])
    async def client_360(person_id: str) -> dict[str, Any]:
        person = agent.replica.record("people", person_id)
        if person.deleted:
            raise NotFound(f"no person {person_id}")
        q = agent.replica.query
        return {
            "person": person.model_dump(mode="json"),
            "leads": await q("SELECT * FROM temp.crm_leads WHERE person_id = ? AND NOT deleted",
                             (person_id,)),
            "interactions": await q(
                "SELECT id, kind, occurred_at, summary FROM temp.crm_interactions WHERE "
                "person_id = ? AND NOT deleted ORDER BY occurred_at DESC LIMIT 50", (person_id,)),
            "tasks": await q("SELECT * FROM temp.crm_tasks WHERE person_id = ? AND status = "
                             "'OPEN' AND NOT deleted ORDER BY due_at", (person_id,)),
            "qd": await q("SELECT score, scored_at, source FROM temp.intel_qd_scores WHERE "
                          "person_id = ? AND NOT deleted ORDER BY scored_at", (person_id,)),
        }

    def _writer(collection: str) -> None:
        @app.post(f"/api/crm/{collection}", dependencies=[api], status_code=201,
                  name=f"create_{collection}")
        async def create(body: Values) -> dict[str, Any]:
            record = await agent.write(collection, None, body.values)
            return record.model_dump(mode="json")

        @app.patch(f"/api/crm/{collection}/{{record_id}}", dependencies=[api],
                   name=f"update_{collection}")
        async def update(record_id: str, body: Values) -> dict[str, Any]:
            agent.replica.record(collection, record_id)  # 404 when absent
            record = await agent.write(collection, record_id, body.values)
            return record.model_dump(mode="json")

    for name in ("people", "leads", "interactions", "tasks"):
        _writer(name)

    @app.post("/api/crm/leads/{lead_id}/stage", dependencies=[api])
    async def move_stage(lead_id: str, body: StageIn) -> dict[str, Any]:
        lead = agent.replica.record("leads", lead_id)
        record = await agent.write("leads", lead_id, {"stage": body.stage.value})
        from datetime import UTC, datetime

        await agent.write("stage_history", None, {
            "lead_id": lead_id, "from_stage": str(getattr(lead, "stage", "")) or None,
            "to_stage": body.stage.value, "changed_by": agent.pairing.user_id,
            "changed_at": datetime.now(UTC).isoformat()})
        return record.model_dump(mode="json")

    @app.get("/api/crm/qd/{person_id}", dependencies=[api])
    async def qd_history(person_id: str) -> list[dict[str, Any]]:
        return await agent.replica.query(
            "SELECT score, scored_at, source, session_id FROM temp.intel_qd_scores WHERE "
            "person_id = ? AND NOT deleted ORDER BY scored_at", (person_id,))

    _sentinel_routes(app, agent, api, token_ok)
    app.include_router(canvas_router(agent), dependencies=[api])
    app.include_router(inventory_router(agent), dependencies=[api])
    app.include_router(pipeline_router(agent), dependencies=[api])

    app.include_router(comms_router(agent), dependencies=[api])
    app.include_router(mobile_edge_local_router(agent), dependencies=[api])
    app.include_router(gpu_requests_router(agent), dependencies=[api])
    return app


def _sentinel_routes(app: FastAPI, agent: EdgeAgent, api: Any,
                     token_ok: Any) -> None:
    """Kiosk sessions: start (consent first) → live QD on a websocket → complete."""

    def sentinel() -> KioskSentinel:
        if agent.sentinel is None:
            raise ConfigError("Sentinel is off on this device: pair it as a kiosk or set "
                              "VELOCITY_EDGE_SENTINEL=true")
        return agent.sentinel

    @app.post("/api/sentinel/sessions", dependencies=[api], status_code=201)
    async def start_session(body: SessionStart) -> dict[str, Any]:
        """Record the visitor's consent and start analysing the camera (or a recording)."""
        return await sentinel().start(body)

    @app.get("/api/sentinel/sessions/{session_id}", dependencies=[api])
    async def session(session_id: str) -> dict[str, Any]:
        return sentinel().describe(session_id)

    @app.post("/api/sentinel/sessions/{session_id}/complete", dependencies=[api])
    async def complete_session(session_id: str, at_end: bool = False) -> dict[str, Any]:
        """Stop analysing (``at_end``: let a recording play out first); write the final QD
        score and the session's signals (they sync)."""
        return await sentinel().complete(session_id, at_end=at_end)

    @app.post("/api/sentinel/consent/revoke", dependencies=[api])
    async def revoke_consent(body: RevokeIn) -> dict[str, int]:
        """Revoke a person's (or one session's) consent: live analysis stops, results purge."""
        return await sentinel().revoke(person_id=body.person_id, session_id=body.session_id)

    @app.websocket("/api/sentinel/ws/perception")
    async def live_perception(ws: WebSocket, session_id: str = "", token: str | None = None
                              ) -> None:
        """Live QD of one session as JSON messages; ``?session_id=…&token=…`` (the local
        token, since browsers cannot set headers on a websocket)."""
        header = ws.headers.get("authorization")
        if not token_ok(token or (header.removeprefix("Bearer ") if header else None)):
            await ws.close(code=4401, reason="missing or wrong local token")
            return
        try:
            queue = sentinel().listen(session_id)
        except VelocityError as exc:
            await ws.close(code=4404 if isinstance(exc, NotFound) else 4409,
                           reason=exc.message[:120])
            return
        await ws.accept()
        try:
            while True:
                message = await queue.get()
                await ws.send_json(message)
                if message["type"] in ("completed", "stopped"):
                    await ws.close()
                    return
        except WebSocketDisconnect:
            pass
        finally:
            sentinel().unlisten(session_id, queue)
