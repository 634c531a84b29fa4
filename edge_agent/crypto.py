"""Encryption at rest for the edge replica: AES-256-GCM per blob, key derived from the device key.

Every document state and outbox update is sealed before it reaches SQLite; the blob's row identity
(guid or update id) is bound as associated data, so a blob cannot be moved to another row.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import StorageError

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
