"""Auth primitives: password hashing, signed tokens, device keys and challenges (no I/O)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import AuthError
from core.identity import Principal, Role

_hasher = PasswordHasher()
TOKEN_ALGORITHM = "HS256"
CHALLENGE_CONTEXT = b"velocity-sync-v1"


def hash_password(password: str) -> str:
    """An argon2id hash (CPU-heavy: call it off the event loop)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches (CPU-heavy: call it off the event loop)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DECOY: list[str] = []


def decoy_hash() -> str:
    """A hash to verify against when no account matches, so an unknown email costs the same
    time as a wrong password."""
    if not _DECOY:
        _DECOY.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _DECOY[0]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says: who, and the account's token version it was made at."""

    principal: Principal
    version: int


def issue_token(principal: Principal, secret: str, ttl_s: int, version: int) -> str:
    """A short-lived access token bound to the account's current token ``version``."""
    now = int(time.time())
    claims = {
        "sub": principal.user_id, "tid": principal.tenant_id, "role": principal.role.value,
        "team": principal.team_id, "ver": version, "iat": now, "exp": now + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


def read_token(token: str, secret: str) -> AccessClaims:
    """Verify a token; expired, forged or malformed tokens are an `AuthError`."""
    try:
        claims = jwt.decode(token, secret, algorithms=[TOKEN_ALGORITHM],
                            options={"require": ["exp", "sub", "tid", "role", "ver"]})
        principal = Principal(claims["tid"], claims["sub"], Role(claims["role"]),
                              claims.get("team"))
        return AccessClaims(principal, int(claims["ver"]))
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired; refresh it or log in again", code="token_expired"
                        ) from None
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
        raise AuthError("invalid token", code="token_invalid") from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_pairing_code() -> str:
    """A one-time code a person can type: 12 characters in groups of four."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def pairing_code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


@dataclass(frozen=True)
class DeviceKey:
    """A device's Ed25519 key pair."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> DeviceKey:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def to_bytes(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def public_bytes(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign_challenge(self, nonce: bytes, device_id: str) -> bytes:
        return self.private.sign(challenge_message(nonce, device_id))


def challenge_message(nonce: bytes, device_id: str) -> bytes:
    """What a device signs: bound to this protocol, this nonce and this device."""
    return CHALLENGE_CONTEXT + nonce + device_id.encode()


def verify_challenge(public_key: bytes, nonce: bytes, device_id: str, signature: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, challenge_message(nonce, device_id)
        )
    except (InvalidSignature, ValueError):
        raise AuthError("device signature does not verify", code="bad_signature") from None
