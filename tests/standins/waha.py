"""A WAHA server as its documentation describes it: ``POST /api/sendText`` (``X-Api-Key``),
answering with the sent message (WEBJS shape: ``id._serialized``), and webhooks ``message`` and
``message.ack`` signed with ``X-Webhook-Hmac`` (HMAC-SHA512 of the body). A test scripts its
failures and decides when it delivers a webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CHAT_ID = re.compile(r"^[1-9][0-9]{6,14}@c\.us$")


@dataclass
class WahaStandIn:
    api_key: str = "waha-key"
    session: str = "default"
    hmac_key: str = "waha-webhook-hmac-key"
    me: str = "919800000000@c.us"
    webhook_url: str = ""
    fail_next: list[int] = field(default_factory=list)
    """HTTP statuses to answer the next sendText requests with."""
    delay_s: float = 0.0
    ack_before_answer: int | None = None
    """Deliver a ``message.ack`` with this number before answering sendText (WAHA's acks can
    overtake its HTTP answer)."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every message this server accepted: chatId, text, id."""
    requests: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/api/sendText", response_model=None)
        async def send_text(request: Request) -> JSONResponse:
            self.requests += 1
            if request.headers.get("x-api-key") != self.api_key:
                return JSONResponse({"message": "Unauthorized", "statusCode": 401}, 401)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return JSONResponse({"statusCode": status, "message": "Session status is not "
                                     "as expected", "error": "Unprocessable"}, status)
            body = await request.json()
            if body.get("session") != self.session:
                return JSONResponse({"statusCode": 404, "message": "Session not found"}, 404)
            chat_id, text = body.get("chatId"), body.get("text")
            if not isinstance(chat_id, str) or not CHAT_ID.match(chat_id) or not isinstance(
                    text, str):
                return JSONResponse({"statusCode": 400, "message": "Bad request"}, 400)
            key = secrets.token_hex(10).upper()
            serialized = f"true_{chat_id}_{key}"
            self.sent.append({"chatId": chat_id, "text": text, "id": serialized})
            if self.ack_before_answer is not None:
                r = await self.deliver(self.ack_event(serialized, self.ack_before_answer))
                r.raise_for_status()
            return JSONResponse({
                "id": {"fromMe": True, "remote": chat_id, "id": key, "_serialized": serialized},
                "timestamp": int(time.time()), "from": self.me, "fromMe": True, "to": chat_id,
                "body": text, "hasMedia": False, "ack": 1, "ackName": "SERVER"}, 201)

        return app

    def message_event(self, from_digits: str, body: str, *, message_id: str | None = None,
                      voice_url: str | None = None, name: str | None = None) -> dict[str, Any]:
        """A ``message`` webhook: an inbound text, or a voice note (media by URL)."""
        chat_id = f"{from_digits}@c.us"
        payload: dict[str, Any] = {
            "id": message_id or f"false_{chat_id}_{secrets.token_hex(10).upper()}",
            "timestamp": int(time.time()), "from": chat_id, "fromMe": False, "to": self.me,
            "body": body, "hasMedia": voice_url is not None, "ack": 1, "ackName": "SERVER",
            "_data": {"notifyName": name} if name else {}}
        if voice_url is not None:
            payload["media"] = {"url": voice_url, "mimetype": "audio/ogg; codecs=opus",
                                "filename": None, "error": None}
        return {"id": f"evt_{secrets.token_hex(8)}", "timestamp": int(time.time() * 1000),
                "event": "message", "session": self.session, "engine": "WEBJS",
                "me": {"id": self.me, "pushName": "Velocity Sales"}, "payload": payload}

    def ack_event(self, message_id: str, ack: int) -> dict[str, Any]:
        """A ``message.ack`` webhook (1 SERVER, 2 DEVICE, 3 READ, 4 PLAYED, -1 ERROR)."""
        names = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
        return {"id": f"evt_{secrets.token_hex(8)}", "timestamp": int(time.time() * 1000),
                "event": "message.ack", "session": self.session, "engine": "WEBJS",
                "payload": {"id": message_id, "from": self.me, "fromMe": True,
                            "to": message_id.split("_")[1], "ack": ack,
                            "ackName": names[ack]}}

    def sign(self, body: bytes) -> dict[str, str]:
        digest = hmac.new(self.hmac_key.encode(), body, hashlib.sha512).hexdigest()
        return {"X-Webhook-Hmac": digest, "X-Webhook-Hmac-Algorithm": "sha512",
                "X-Webhook-Request-Id": secrets.token_hex(8)}

    async def deliver(self, event: dict[str, Any], *, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> httpx.Response:
        """POST a webhook to ``webhook_url`` as WAHA does (``headers``/``body``: override)."""
        raw = body if body is not None else json.dumps(event).encode()
        async with httpx.AsyncClient() as http:
            return await http.post(self.webhook_url, content=raw, headers={
                "Content-Type": "application/json",
                **(headers if headers is not None else self.sign(raw))})
