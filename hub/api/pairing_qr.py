"""Pairing codes as signed QR payloads for the iPad, and the hub's proof of its identity."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from hub.api.deps import HubDep, ManagerDep
from hub.identity import identity_key
from ios_bridge.pairing import (
    IDENTITY_PATH,
    PairingPayload,
    b64url,
    fingerprint,
    identity_signed_bytes,
    qr_png,
    sign_payload,
)

router = APIRouter(prefix="/api", tags=["devices"])


class PairingQrIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=64)
    device_kind: str = Field("ipad", pattern="^(ipad|kiosk|desktop)$")
    hub_url: str | None = Field(None, pattern="^https?://", max_length=300,
                                description="The URL devices reach the hub at (default: the "
                                "one this request came in on).")


class PairingQrOut(BaseModel):
    code: str
    payload: str
    fingerprint: str
    expires_at: int


async def _payload(body: PairingQrIn, principal: ManagerDep, hub: HubDep,
                   request: Request) -> PairingPayload:
    ttl = hub.settings.pairing_code_ttl_s
    code = await hub.accounts.issue_pairing_code(principal, body.user_id, body.device_kind, ttl)
    hub_url = body.hub_url or str(request.base_url).rstrip("/")
    key = await identity_key(hub.storage.settings)
    return sign_payload(key, hub_url, code, int(time.time()) + ttl)


@router.post("/devices/pairing-qr")
async def pairing_qr(body: PairingQrIn, principal: ManagerDep, hub: HubDep,
                     request: Request) -> PairingQrOut:
    """Issue a pairing code inside a payload signed by the hub's identity key (QR text)."""
    payload = await _payload(body, principal, hub, request)
    return PairingQrOut(code=payload.code, payload=payload.to_text(),
                        fingerprint=payload.fingerprint, expires_at=payload.expires_at)


@router.post("/devices/pairing-qr.png", response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
async def pairing_qr_png(body: PairingQrIn, principal: ManagerDep, hub: HubDep,
                         request: Request) -> Response:
    """The same, as a QR code PNG for the WebOS to show (code and fingerprint in headers)."""
    payload = await _payload(body, principal, hub, request)
    return Response(qr_png(payload), media_type="image/png", headers={
        "X-Pairing-Code": payload.code, "X-Hub-Fingerprint": payload.fingerprint,
        "Cache-Control": "no-store"})


@router.get(IDENTITY_PATH.removeprefix("/api"), tags=["hub"])
async def hub_identity(hub: HubDep, nonce: str = Query(pattern="^[0-9a-f]{64}$")
                       ) -> dict[str, str]:
    """The hub's identity key, with a signature of the caller's nonce proving it holds it."""
    key = await identity_key(hub.storage.settings)
    signature = key.private.sign(identity_signed_bytes(bytes.fromhex(nonce)))
    return {"public_key": b64url(key.public_bytes), "fingerprint": fingerprint(key.public_bytes),
            "signature": b64url(signature)}
