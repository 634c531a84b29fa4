"""The hub's Ed25519 identity key: made once per database, shared by every hub process on it."""

from __future__ import annotations

from core.auth import DeviceKey
from hub.storage.settings import SettingsStore


async def identity_key(settings: SettingsStore) -> DeviceKey:
    """The key that signs pairing payloads and answers identity challenges."""
    value = await settings.identity_key(lambda: DeviceKey.generate().to_bytes().hex())
    return DeviceKey.from_bytes(bytes.fromhex(value))
