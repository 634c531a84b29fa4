"""The pairing payload an admin shows as a QR code, signed by the hub's identity key.

Text form: ``velocity-pair:1:<base64url of the payload's canonical JSON>``. The payload holds
the hub URL, the one-time pairing code, the hub's Ed25519 public key and its fingerprint, the
expiry (Unix seconds) and a signature over everything else, made by the hub with its identity
key. The device checks that the key matches the fingerprint, the signature verifies and the
payload has not expired; then that the hub at the URL holds that key (it signs a fresh nonce);
only then does it redeem the code. It keeps the fingerprint, and a later payload for the same
hub signed by another key is refused (see docs/ios.md).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.auth import DeviceKey
from core.errors import AuthError, ConfigError

PAYLOAD_VERSION = 1
PREFIX = f"velocity-pair:{PAYLOAD_VERSION}:"
SIGNING_CONTEXT = b"velocity-pairing-v1"
IDENTITY_CONTEXT = b"velocity-hub-identity-v1"
IDENTITY_PATH = "/api/hub/identity"
MAX_TEXT_CHARS = 1200
"""A payload longer than this is refused unread (a QR code of version 25 holds about 1,200)."""


@dataclass(frozen=True)
class PairingPayload:
    hub_url: str
    code: str
    hub_key: str
    """base64url (unpadded) of the hub's raw 32-byte Ed25519 public key."""
    fingerprint: str
    """``sha256:`` + the first 32 hex digits of SHA-256 of the raw public key."""
    expires_at: int
    signature: str = ""
    """base64url (unpadded) Ed25519 signature of `signed_bytes`."""

    def signed_bytes(self) -> bytes:
        """What the hub signs: a context string, then the canonical JSON of every other field."""
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return SIGNING_CONTEXT + _canonical(fields)

    def to_text(self) -> str:
        """The text a QR code carries."""
        return PREFIX + b64url(_canonical(asdict(self)))


def fingerprint(public_key: bytes) -> str:
    """A hub key's fingerprint, short enough to read out and compare by eye."""
    return "sha256:" + hashlib.sha256(public_key).hexdigest()[:32]


def sign_payload(key: DeviceKey, hub_url: str, code: str, expires_at: int) -> PairingPayload:
    """A payload for ``code``, signed by the hub's identity ``key``."""
    public = key.public_bytes
    unsigned = PairingPayload(hub_url.rstrip("/"), code, b64url(public), fingerprint(public),
                              int(expires_at))
    signature = key.private.sign(unsigned.signed_bytes())
    return PairingPayload(**{**asdict(unsigned), "signature": b64url(signature)})


def verify_payload(text: str, *, now: float | None = None,
                   pinned_fingerprint: str | None = None) -> PairingPayload:
    """The device's check of a scanned payload; any defect is an `AuthError` with a reason."""
    if len(text) > MAX_TEXT_CHARS or not text.startswith(PREFIX):
        raise AuthError("not a Velocity pairing code; scan the code the hub's admin shows",
                        code="bad_pairing_payload")
    try:
        data = json.loads(_unb64(text[len(PREFIX):]))
        payload = PairingPayload(**data)
        types_ok = all(isinstance(getattr(payload, n), str) for n in
                       ("hub_url", "code", "hub_key", "fingerprint", "signature"))
        if not types_ok or type(payload.expires_at) is not int:
            raise TypeError
        public = _unb64(payload.hub_key)
        signature = _unb64(payload.signature)
    except (ValueError, TypeError):
        raise AuthError("the pairing code is damaged; scan it again",
                        code="bad_pairing_payload") from None
    if fingerprint(public) != payload.fingerprint:
        raise AuthError("the pairing code's hub key does not match its fingerprint",
                        code="bad_pairing_signature")
    if pinned_fingerprint is not None and payload.fingerprint != pinned_fingerprint:
        raise AuthError(f"this hub's key changed (was {pinned_fingerprint}, now "
                        f"{payload.fingerprint}); confirm with the admin before pairing",
                        code="hub_key_changed")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, payload.signed_bytes())
    except (InvalidSignature, ValueError):
        raise AuthError("the pairing code's signature does not verify",
                        code="bad_pairing_signature") from None
    if payload.expires_at <= (time.time() if now is None else now):
        raise AuthError("the pairing code has expired; ask the admin for a new one",
                        code="pairing_payload_expired")
    return payload


def identity_signed_bytes(nonce: bytes) -> bytes:
    """What the hub signs to prove it holds its identity key."""
    return IDENTITY_CONTEXT + nonce


def verify_identity(payload: PairingPayload, nonce: bytes, answer: Mapping[str, Any]) -> None:
    """Check the hub's answer to ``GET /api/hub/identity?nonce=…``: the hub at the payload's
    URL holds the key that signed the payload (else `AuthError` ``hub_key_mismatch``)."""
    try:
        public = _unb64(str(answer["public_key"]))
        signature = _unb64(str(answer["signature"]))
        Ed25519PublicKey.from_public_bytes(public).verify(signature,
                                                          identity_signed_bytes(nonce))
    except (KeyError, ValueError, InvalidSignature):
        raise AuthError("the hub did not prove its identity; check the hub URL",
                        code="hub_key_mismatch") from None
    if fingerprint(public) != payload.fingerprint:
        raise AuthError(f"the hub at {payload.hub_url} holds key {fingerprint(public)}, not the "
                        f"key {payload.fingerprint} that signed this pairing code; do not pair",
                        code="hub_key_mismatch")


def fetch_pairing_payload(hub_url: str, email: str, password: str, user_id: str,
                          device_kind: str = "ipad", device_hub_url: str | None = None
                          ) -> PairingPayload:
    """Log in as a manager, have the hub issue a signed payload, and check it as a device
    would (signature, expiry, and the hub's proof that it holds the signing key)."""
    import secrets

    import httpx

    try:
        with httpx.Client(base_url=hub_url.rstrip("/"), timeout=30) as http:
            r = http.post("/api/auth/login", json={"email": email, "password": password})
            _raise_for(r, "login refused")
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = http.post("/api/devices/pairing-qr", headers=headers, json={
                "user_id": user_id, "device_kind": device_kind,
                "hub_url": device_hub_url or hub_url.rstrip("/")})
            _raise_for(r, "the hub refused to issue a pairing code")
            payload = verify_payload(r.json()["payload"])
            nonce = secrets.token_bytes(32)
            r = http.get(IDENTITY_PATH, params={"nonce": nonce.hex()})
            _raise_for(r, "the hub did not answer its identity check")
            verify_identity(payload, nonce, r.json())
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the hub at {hub_url} ({exc}); check the URL") from exc
    return payload


def _raise_for(response: Any, what: str) -> None:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise AuthError(f"{what}: {detail}", code="pairing_refused")


def qr_png(payload: PairingPayload, scale: int = 8) -> bytes:
    """The payload as a QR code PNG (error correction M, so a scuffed print still scans)."""
    import segno

    out = io.BytesIO()
    segno.make_qr(payload.to_text(), error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def pairing_payload_schema() -> dict[str, Any]:
    """The decoded payload as JSON Schema (exported with the contract)."""
    text = {"type": "string", "minLength": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "PairingPayload",
        "description": f"QR text: '{PREFIX}' + base64url (no padding) of this object as "
                       "canonical JSON (sorted keys, no spaces, UTF-8). signature = Ed25519 "
                       f"over '{SIGNING_CONTEXT.decode()}' + canonical JSON of the other fields.",
        "type": "object",
        "additionalProperties": False,
        "required": ["hub_url", "code", "hub_key", "fingerprint", "expires_at", "signature"],
        "properties": {
            "hub_url": {**text, "pattern": "^https?://"},
            "code": text,
            "hub_key": {**text, "description": "base64url of the raw 32-byte Ed25519 key"},
            "fingerprint": {"type": "string", "pattern": "^sha256:[0-9a-f]{32}$"},
            "expires_at": {"type": "integer", "description": "Unix seconds"},
            "signature": text,
        },
        "x-velocity": {
            "prefix": PREFIX, "signing_context": SIGNING_CONTEXT.decode(),
            "fingerprint": {"prefix": "sha256:", "hash": "sha256", "hex_digits": 32},
            "identity": {
                "method": "GET", "path": IDENTITY_PATH, "context": IDENTITY_CONTEXT.decode(),
                "query": {"nonce": "64 lowercase hex digits: 32 random bytes"},
                "response": {"public_key": "base64url of the raw key",
                             "fingerprint": "as in the payload",
                             "signature": "base64url Ed25519 signature"},
                "signed": IDENTITY_CONTEXT.decode() + " (ASCII) + the 32 nonce bytes",
                "rule": "the key must hash to the payload's fingerprint and the signature "
                        "verify, before the code is redeemed",
            },
            "redeem": {
                "method": "POST", "path": "/api/devices/pair",
                "request": {"type": "object", "required": ["code", "public_key", "name"],
                            "properties": {
                                "code": {"type": "string"},
                                "public_key": {"type": "string", "description":
                                               "base64 (standard) of the raw 32-byte Ed25519 "
                                               "public key of the device"},
                                "name": {"type": "string", "maxLength": 100}}},
                "response": {"type": "object",
                             "required": ["device_id", "tenant_id", "user_id", "kind"],
                             "properties": {k: {"type": "string"} for k in
                                            ("device_id", "tenant_id", "user_id", "kind")}},
            },
        },
    }


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64url(raw: bytes) -> str:
    """base64url without padding (every binary field of the payload)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
