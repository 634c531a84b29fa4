"""Errors of the GPU front, in the one `VelocityError` family."""

from __future__ import annotations

from core.errors import VelocityError


class GpuUnavailable(VelocityError):
    """The GPU side (SGLang or every ComfyUI worker) is down or not configured: HTTP 502."""

    code = "gpu_unavailable"


class PayloadTooLarge(VelocityError):
    """An upload exceeds its configured size: HTTP 413."""

    code = "payload_too_large"


class QueryRefused(VelocityError):
    """The Oracle refused a query: the reason says which rule it broke (HTTP 422)."""

    code = "query_refused"


class BadRequest(VelocityError):
    """The request is well-formed but cannot be served as asked: HTTP 400."""

    code = "bad_request"
