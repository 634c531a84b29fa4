"""The pairing payload: signed by the hub's key, shown as a QR code, checked on the device."""

from __future__ import annotations

import base64
import json
import time

import pytest

from core.auth import DeviceKey
from core.errors import AuthError
from ios_bridge.pairing import (
    PREFIX,
    b64url,
    identity_signed_bytes,
    sign_payload,
    verify_identity,
    verify_payload,
)

HUB = "https://hub.example.test"


def signed(expires_in: int = 600, key: DeviceKey | None = None) -> tuple[str, DeviceKey]:
    key = key or DeviceKey.generate()
    return sign_payload(key, HUB, "ABCD-EFGH-JKLM", int(time.time()) + expires_in).to_text(), key


def _reencode(text: str, **changes: object) -> str:
    raw = base64.urlsafe_b64decode(text[len(PREFIX):] + "==")
    data = {**json.loads(raw), **changes}
    body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return PREFIX + base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def test_a_signed_payload_verifies() -> None:
    text, _ = signed()
    payload = verify_payload(text)
    assert (payload.hub_url, payload.code) == (HUB, "ABCD-EFGH-JKLM")
    assert payload.fingerprint.startswith("sha256:") and len(payload.fingerprint) == 39


@pytest.mark.parametrize("change", [
    {"hub_url": "https://evil.example.test"},  # a field changed after signing
    {"code": "ZZZZ-EFGH-JKLM"},
    {"expires_at": 4_000_000_000},
])
def test_a_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    text, _ = signed()
    with pytest.raises(AuthError) as refused:
        verify_payload(_reencode(text, **change))
    assert refused.value.code == "bad_pairing_signature"


def test_signed_by_another_key_is_refused() -> None:
    text, _ = signed()
    forged, _ = signed()
    other_key = json.loads(base64.urlsafe_b64decode(forged[len(PREFIX):] + "=="))["hub_key"]
    # the attacker's signature with the original key and fingerprint: does not verify
    original = json.loads(base64.urlsafe_b64decode(text[len(PREFIX):] + "=="))
    mixed = _reencode(forged, hub_key=original["hub_key"], fingerprint=original["fingerprint"])
    with pytest.raises(AuthError, match="signature does not verify"):
        verify_payload(mixed)
    # the attacker's own key under the original fingerprint: does not match
    with pytest.raises(AuthError, match="does not match its fingerprint"):
        verify_payload(_reencode(text, hub_key=other_key))
    # a self-consistent payload by another key, where the device pinned this hub's key
    with pytest.raises(AuthError) as refused:
        verify_payload(forged, pinned_fingerprint=original["fingerprint"])
    assert refused.value.code == "hub_key_changed"


def test_an_expired_payload_is_refused() -> None:
    text, _ = signed(expires_in=60)
    verify_payload(text)
    with pytest.raises(AuthError) as refused:
        verify_payload(text, now=time.time() + 61)
    assert refused.value.code == "pairing_payload_expired"


@pytest.mark.parametrize("text", [
    "", "hello", PREFIX, PREFIX + "!!!", PREFIX + "e30", PREFIX + "W10",
    PREFIX + base64.urlsafe_b64encode(b"\xff\xfe").decode(), PREFIX + "A" * 5000,
])
def test_garbage_is_refused_cleanly(text: str) -> None:
    with pytest.raises(AuthError):
        verify_payload(text)


def test_wrong_types_are_refused_cleanly() -> None:
    text, _ = signed()
    for change in ({"expires_at": "soon"}, {"code": 7}, {"expires_at": True}):
        with pytest.raises(AuthError):
            verify_payload(_reencode(text, **change))


def test_the_hub_must_hold_the_key_that_signed_the_payload() -> None:
    text, key = signed()
    payload = verify_payload(text)
    nonce = bytes(range(32))

    def answer(k: DeviceKey, signed_nonce: bytes = nonce) -> dict[str, str]:
        return {"public_key": b64url(k.public_bytes),
                "signature": b64url(k.private.sign(identity_signed_bytes(signed_nonce)))}

    verify_identity(payload, nonce, answer(key))
    for bad in (answer(DeviceKey.generate()),  # another hub, a valid proof of its own key
                answer(key, bytes(32)),  # a replayed proof of another nonce
                {"public_key": b64url(key.public_bytes), "signature": "AAAA"},
                {}):
        with pytest.raises(AuthError) as refused:
            verify_identity(payload, nonce, bad)
        assert refused.value.code == "hub_key_mismatch"
