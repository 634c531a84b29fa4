"""The one place `VelocityError` families become HTTP statuses; internals never leak."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.errors import (
    AuthError,
    ConfigError,
    Conflict,
    NotFound,
    PermissionDenied,
    ProtocolError,
    RecordInvalid,
    Throttled,
    VelocityError,
)
from gpu_hub.errors import BadRequest, GpuUnavailable, PayloadTooLarge, QueryRefused

_STATUS: list[tuple[type[VelocityError], int]] = [
    (PermissionDenied, 403),
    (AuthError, 401),
    (NotFound, 404),
    (Conflict, 409),
    (RecordInvalid, 422),
    (Throttled, 429),
    (ProtocolError, 400),
    (ConfigError, 500),
    (QueryRefused, 422),
    (BadRequest, 400),
    (PayloadTooLarge, 413),
    (GpuUnavailable, 502),
]


def status_for(error: VelocityError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def response_for(exc: VelocityError) -> JSONResponse:
    """The HTTP answer to an error: its status, code and message (and problems, if any)."""
    body: dict[str, object] = {"error": exc.code, "detail": exc.message}
    if isinstance(exc, RecordInvalid) and exc.problems:
        body["problems"] = exc.problems
    headers = {"WWW-Authenticate": "Bearer"} if status_for(exc) == 401 else None
    if isinstance(exc, Throttled) and exc.retry_after_s is not None:
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(body, status_code=status_for(exc), headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(VelocityError)
    async def _handle(_request: Request, exc: VelocityError) -> JSONResponse:
        return response_for(exc)
