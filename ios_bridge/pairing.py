"""The pairing payload an admin shows as a QR code, signed by the hub's identity key.

Text form: ``velocity-pair:1:<base64url of the payload's canonical JSON>``. The payload holds
the hub URL, the one-time pairing code, the hub's Ed25519 public key and its fingerprint, the
expiry (Unix seconds) and a signature over everything else. The device checks that the key
matches the fingerprint, the signature verifies and the payload has not expired before it
redeems the code; it then keeps the fingerprint, and a later payload for the same hub signed by
another key is refused (see docs/ios.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.auth import DeviceKey
from core.errors import AuthError, ConfigError

PAYLOAD_VERSION = 1
PREFIX = f"velocity-pair:{PAYLOAD_VERSION}:"
SIGNING_CONTEXT = b"velocity-pairing-v1"
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
        return PREFIX + _b64(_canonical(asdict(self)))


def fingerprint(public_key: bytes) -> str:
    """A hub key's fingerprint, short enough to read out and compare by eye."""
    return "sha256:" + hashlib.sha256(public_key).hexdigest()[:32]


def sign_payload(key: DeviceKey, hub_url: str, code: str, expires_at: int) -> PairingPayload:
    """A payload for ``code``, signed by the hub's identity ``key``."""
    public = key.public_bytes
    unsigned = PairingPayload(hub_url.rstrip("/"), code, _b64(public), fingerprint(public),
                              int(expires_at))
    signature = key.private.sign(unsigned.signed_bytes())
    return PairingPayload(**{**asdict(unsigned), "signature": _b64(signature)})


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


def load_or_create_hub_key(path: Path) -> DeviceKey:
    """The hub's identity key (raw Ed25519, mode 0600), created on first use."""
    path = Path(path)
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by others; run `chmod 600 {path}`")
        try:
            return DeviceKey.from_bytes(path.read_bytes())
        except ValueError as exc:
            raise ConfigError(f"{path} is not a raw Ed25519 key ({exc}); move it away to make "
                              "a new one (devices paired with the old key must re-pair)") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    key = DeviceKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.to_bytes())
    return key


def render_qr_png(payload: PairingPayload, out: Path, scale: int = 8) -> Path:
    """The payload as a QR code PNG (error correction M, so a scuffed print still scans)."""
    import segno

    segno.make_qr(payload.to_text(), error="m").save(str(out), kind="png", scale=scale,
                                                      border=4)
    return Path(out)


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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
