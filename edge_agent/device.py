"""The device's identity on disk: its keys in a passphrase-sealed vault and its pairing.

The folder is 0700 and every file the agent writes 0600. The vault (`keys.vault`) holds the
device's Ed25519 key and the replica secret, sealed under the operator's passphrase
(``VELOCITY_EDGE_PASSPHRASE``), which is never stored: a copied folder opens only with it.
"""

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
from edge_agent.crypto import open_with_passphrase, seal_with_passphrase

KEY_FILE = "device.key"
"""Where devices before the vault kept their key in plain text (moved into the vault)."""
VAULT_FILE = "keys.vault"
IDENTITY_FILE = "device.json"
REPLICA_FILE = "replica.db"
PASSPHRASE_HELP = ("set VELOCITY_EDGE_PASSPHRASE (or pass --passphrase): it seals this device's "
                   "keys, and is asked for at every start")


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


@dataclass(frozen=True)
class DeviceKeys:
    """What the vault holds: the key the device signs with and the secret its replica is
    sealed under."""

    device: DeviceKey
    replica_secret: bytes


def unlock(data_dir: Path, passphrase: str | None) -> DeviceKeys:
    """The device's keys from its vault, made on first use (a plain ``device.key`` of an older
    agent is moved into it); the folder is made private on the way."""
    if not passphrase:
        raise ConfigError(f"this device's keys are sealed with a passphrase; {PASSPHRASE_HELP}")
    make_private(data_dir)
    vault = data_dir / VAULT_FILE
    if vault.exists():
        opened = open_with_passphrase(json.loads(vault.read_text()), passphrase)
        return DeviceKeys(DeviceKey.from_bytes(opened[:32]), opened[32:])
    legacy = data_dir / KEY_FILE
    if legacy.exists():  # its replica was sealed under a secret derived from the key itself
        device = DeviceKey.from_bytes(legacy.read_bytes())
        keys = DeviceKeys(device, device.to_bytes())
    else:
        keys = DeviceKeys(DeviceKey.generate(), secrets.token_bytes(32))
    write_private(vault, json.dumps(seal_with_passphrase(
        keys.device.to_bytes() + keys.replica_secret, passphrase)).encode())
    legacy.unlink(missing_ok=True)
    return keys


def make_private(data_dir: Path) -> None:
    """The device folder 0700, every file in it 0600, and the replica file made 0600 before
    SQLite creates it (its WAL and shared-memory files take the same mode)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    for path in data_dir.iterdir():
        if path.is_file():
            path.chmod(0o600)
    replica = data_dir / REPLICA_FILE
    if not replica.exists():
        os.close(os.open(replica, os.O_WRONLY | os.O_CREAT, 0o600))


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` whole, readable by the owner only (replacing it atomically)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_pairing(data_dir: Path) -> Pairing:
    path = data_dir / IDENTITY_FILE
    if not path.exists():
        raise ConfigError(
            f"this device is not paired ({path} missing); run `velocity edge pair --hub URL "
            "--code CODE` with a code from an admin"
        )
    return Pairing(**json.loads(path.read_text()))


async def pair(data_dir: Path, hub_url: str, code: str, name: str,
               passphrase: str | None = None) -> Pairing:
    """Redeem a one-time pairing code: register this device's public key with the hub.
    ``passphrase``: seals the device's keys (default: ``VELOCITY_EDGE_PASSPHRASE``)."""
    key = unlock(data_dir, passphrase or os.environ.get("VELOCITY_EDGE_PASSPHRASE")).device
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
    write_private(data_dir / IDENTITY_FILE, json.dumps(asdict(pairing), indent=2).encode())
    return pairing
