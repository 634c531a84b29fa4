"""The device's identity on disk: its Ed25519 key (0600) and its pairing with a hub."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from core.auth import DeviceKey
from core.errors import AuthError, ConfigError

KEY_FILE = "device.key"
IDENTITY_FILE = "device.json"


@dataclass(frozen=True)
class Pairing:
    """What the hub told us at pairing, plus our CRDT client id."""

    hub_url: str
    device_id: str
    tenant_id: str
    user_id: str
    kind: str
    client_id: int

    @property
    def sync_url(self) -> str:
        scheme = "wss" if self.hub_url.startswith("https") else "ws"
        return f"{scheme}://{self.hub_url.split('://', 1)[1].rstrip('/')}/api/sync/ws"


def load_or_create_key(data_dir: Path) -> DeviceKey:
    """The device key, created on first use with owner-only permissions."""
    path = data_dir / KEY_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by others; run `chmod 600 {path}`")
        return DeviceKey.from_bytes(path.read_bytes())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = DeviceKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.to_bytes())
    return key


def load_pairing(data_dir: Path) -> Pairing:
    path = data_dir / IDENTITY_FILE
    if not path.exists():
        raise ConfigError(
            f"this device is not paired ({path} missing); run `velocity edge pair --hub URL "
            "--code CODE` with a code from an admin"
        )
    return Pairing(**json.loads(path.read_text()))


async def pair(data_dir: Path, hub_url: str, code: str, name: str) -> Pairing:
    """Redeem a one-time pairing code: register this device's public key with the hub."""
    key = load_or_create_key(data_dir)
    body = {"code": code, "public_key": base64.b64encode(key.public_bytes).decode(),
            "name": name}
    async with httpx.AsyncClient(base_url=hub_url, timeout=30) as http:
        try:
            r = await http.post("/api/devices/pair", json=body)
        except httpx.HTTPError as exc:
            raise ConfigError(f"cannot reach the hub at {hub_url} ({exc}); check the URL") from exc
    if r.status_code != 200:
        detail = r.json().get("detail", r.text) if r.headers.get("content-type", "").startswith(
            "application/json") else r.text
        raise AuthError(f"pairing refused: {detail}", code="pairing_refused")
    data = r.json()
    pairing = Pairing(hub_url.rstrip("/"), data["device_id"], data["tenant_id"], data["user_id"],
                      data["kind"], secrets.randbits(52))
    (data_dir / IDENTITY_FILE).write_text(json.dumps(asdict(pairing), indent=2))
    return pairing
