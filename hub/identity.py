"""The hub's Ed25519 identity key: made once per database, shared by every hub process on it."""

from __future__ import annotations

from core.auth import DeviceKey
from hub.database import Database


async def identity_key(db: Database) -> DeviceKey:
    """The key that signs pairing payloads and answers identity challenges."""
    value = await db.pool.fetchval("SELECT value FROM hub_settings WHERE key = 'identity_key'")
    if value is None:
        await db.pool.execute(
            "INSERT INTO hub_settings (key, value) VALUES ('identity_key', $1) "
            "ON CONFLICT (key) DO NOTHING", DeviceKey.generate().to_bytes().hex())
        value = await db.pool.fetchval(
            "SELECT value FROM hub_settings WHERE key = 'identity_key'")
    return DeviceKey.from_bytes(bytes.fromhex(value))
