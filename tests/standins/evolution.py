"""An Evolution API server as its documentation describes it: ``POST /message/sendText/
{instance}`` (``apikey`` header, ``{"number", "text"}``), answering with the message ``key``,
and webhooks ``messages.upsert`` / ``messages.update`` sent with the custom headers the
instance's webhook is configured with (here ``Authorization: Bearer <secret>``)."""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

NUMBER = re.compile(r"^[1-9][0-9]{6,14}$")


@dataclass
class EvolutionStandIn:
    api_key: str = "evolution-key"
    instance: str = "sales-mumbai"
    webhook_secret: str = "evolution-webhook-secret"
    webhook_url: str = ""
    fail_next: list[int] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/message/sendText/{instance}", response_model=None)
        async def send_text(instance: str, request: Request) -> JSONResponse:
            self.requests += 1
            if request.headers.get("apikey") != self.api_key:
                return JSONResponse({"status": 401, "error": "Unauthorized",
                                     "response": {"message": "Unauthorized"}}, 401)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return JSONResponse({"status": status, "error": "Internal Server Error",
                                     "response": {"message": "Connection Closed"}}, status)
            if instance != self.instance:
                return JSONResponse({"status": 404, "error": "Not Found", "response": {
                    "message": [f'The "{instance}" instance does not exist']}}, 404)
            body = await request.json()
            number, text = body.get("number"), body.get("text")
            if not isinstance(number, str) or not NUMBER.match(number) or not isinstance(
                    text, str):
                return JSONResponse({"status": 400, "error": "Bad Request",
                                     "response": {"message": ["number and text required"]}}, 400)
            key_id = "BAE5" + secrets.token_hex(6).upper()
            self.sent.append({"number": number, "text": text, "id": key_id})
            return JSONResponse({
                "key": {"remoteJid": f"{number}@s.whatsapp.net", "fromMe": True, "id": key_id},
                "message": {"extendedTextMessage": {"text": text}},
                "messageTimestamp": str(int(time.time())), "status": "PENDING"}, 201)

        return app

    def upsert_event(self, number: str, text: str | None = None, *,
                     key_id: str | None = None, voice_url: str | None = None,
                     name: str | None = None) -> dict[str, Any]:
        """A ``messages.upsert`` webhook: an inbound text, or a voice note (``audioMessage``)."""
        message: dict[str, Any]
        if voice_url is not None:
            message = {"audioMessage": {"url": voice_url, "mimetype": "audio/ogg; codecs=opus",
                                        "seconds": 14, "ptt": True}}
        else:
            message = {"conversation": text or ""}
        return {"event": "messages.upsert", "instance": self.instance, "data": {
            "key": {"remoteJid": f"{number}@s.whatsapp.net", "fromMe": False,
                    "id": key_id or "3EB0" + secrets.token_hex(8).upper()},
            "pushName": name, "message": message,
            "messageType": "audioMessage" if voice_url else "conversation",
            "messageTimestamp": int(time.time())},
            "destination": self.webhook_url, "date_time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "sender": "919800000000@s.whatsapp.net", "apikey": self.api_key}

    def update_event(self, key_id: str, status: str) -> dict[str, Any]:
        """A ``messages.update`` webhook (SERVER_ACK, DELIVERY_ACK, READ, PLAYED, ERROR)."""
        return {"event": "messages.update", "instance": self.instance, "data": {
            "keyId": key_id, "remoteJid": "", "fromMe": True, "status": status},
            "date_time": time.strftime("%Y-%m-%dT%H:%M:%S"), "apikey": self.api_key}

    async def deliver(self, event: dict[str, Any], *, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> httpx.Response:
        raw = body if body is not None else json.dumps(event).encode()
        auth = {"Authorization": f"Bearer {self.webhook_secret}"}
        async with httpx.AsyncClient() as http:
            return await http.post(self.webhook_url, content=raw, headers={
                "Content-Type": "application/json",
                **(headers if headers is not None else auth)})
