"""Encryption at rest for the edge replica: AES-256-GCM per blob, under the replica secret.

Every document state and outbox update is sealed before it reaches SQLite; the blob's row identity
(guid or update id) is bound as associated data, so a blob cannot be moved to another row. The
replica secret and the device key live only in the device's vault, sealed under the operator's
passphrase (`seal_with_passphrase`), never in plain text beside the data (docs/security.md).
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core.errors import ConfigError, StorageError

_NONCE = 12
_INFO = b"velocity-edge replica v1"


class Sealer:
    """Seals and opens blobs with one AES-GCM key."""

    def __init__(self, device_secret: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            device_secret
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, row_id: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, row_id.encode())

    def open(self, blob: bytes, row_id: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], row_id.encode())
        except (InvalidTag, ValueError):
            raise StorageError(
                f"replica row {row_id} does not decrypt with this device's key; the replica "
                "belongs to another device or is damaged — pair again to rebuild it"
            ) from None


# --- the key vault -------------------------------------------------------------------------------

VAULT_VERSION = 1
SCRYPT_N = 2**15
"""scrypt cost (32 MiB, ≈0.1 s on a laptop core): paid once per agent start, and per guess."""


def seal_with_passphrase(secret: bytes, passphrase: str) -> dict[str, object]:
    """``secret`` sealed under a key derived from ``passphrase`` (scrypt, AES-256-GCM), as the
    JSON-ready contents of a vault file."""
    salt, nonce = os.urandom(16), os.urandom(_NONCE)
    sealed = AESGCM(_derive(passphrase, salt, SCRYPT_N)).encrypt(nonce, secret, _VAULT_AD)
    return {"version": VAULT_VERSION, "kdf": "scrypt", "n": SCRYPT_N, "r": 8, "p": 1,
            "salt": base64.b64encode(salt).decode(),
            "sealed": base64.b64encode(nonce + sealed).decode()}


def open_with_passphrase(vault: dict[str, object], passphrase: str) -> bytes:
    """The secret of a vault made by `seal_with_passphrase`; a wrong passphrase or a damaged
    vault is a `ConfigError`."""
    try:
        salt = base64.b64decode(str(vault["salt"]))
        blob = base64.b64decode(str(vault["sealed"]))
        key = _derive(passphrase, salt, int(str(vault["n"])))
        return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], _VAULT_AD)
    except (InvalidTag, KeyError, ValueError):
        raise ConfigError("the passphrase does not open this device's keys (or the vault is "
                          "damaged); set VELOCITY_EDGE_PASSPHRASE to this device's passphrase"
                          ) from None


_VAULT_AD = b"velocity-edge vault v1"


def _derive(passphrase: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase.encode())
