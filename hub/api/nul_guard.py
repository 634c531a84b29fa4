"""Refuse a request carrying a NUL character (``\\x00``) in its path, query or JSON body.

PostgreSQL text cannot hold NUL: a NUL that reached a query parameter failed inside the
database (a 500). Every string a route could pass on comes from one of these three places, so
one check in front of every route refuses them all as bad input (400, ``nul_character``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import MalformedFrame
from hub.api.errors import response_for

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RefuseNul:
    """ASGI middleware: a request with NUL anywhere a route reads a string gets 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_in_url(scope)
        if where is None and scope["method"] in _BODY_METHODS and _is_json(scope):
            body = await _read_body(receive)
            where = "body" if _nul_in_json(body) else None
            receive = _replay(body, receive)
        if where is not None:
            error = MalformedFrame(f"the request {where} holds a NUL character (\\x00), which "
                                   "cannot be stored; remove it and send again",
                                   code="nul_character")
            await response_for(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _nul_in_url(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return "path"
    if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return "query"
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive_more: Receive) -> Receive:
    """The body already read, then the connection's own messages (a streaming response
    listens for the real disconnect; reporting one at once would cut it off)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive_more()

    return receive


def _nul_in_json(body: bytes) -> bool:
    """True when a string or key of the JSON ``body`` holds NUL (invalid JSON: False, the
    route answers it)."""
    if b"\\u0000" not in body.lower() and b"\x00" not in body:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return any("\x00" in s for s in _strings(value))


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            yield from node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
