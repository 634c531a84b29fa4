"""The edge device's keys at rest: a copied folder opens only with the passphrase; the folder is
private; an older device's plain key moves into the vault and its replica still opens."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import httpx
import pytest

from core.auth import DeviceKey
from core.errors import ConfigError
from edge_agent.crypto import Sealer
from edge_agent.device import IDENTITY_FILE, KEY_FILE, VAULT_FILE, pair, unlock
from edge_agent.replica import Replica
from edge_agent.service import TOKEN_FILE, EdgeAgent
from edge_agent.settings import EdgeSettings
from tests.hubkit import login, running_hub

pytestmark = pytest.mark.anyio
PASSPHRASE = "correct horse battery staple"


async def _write_person(folder: Path, secret: bytes) -> None:
    async with Replica(folder / "replica.db", Sealer(secret), 7) as replica:
        await replica.write("people", "p1", {"tenant_id": "t1", "full_name": "Zara Khan"})


async def _read_person(folder: Path, secret: bytes) -> str:
    async with Replica(folder / "replica.db", Sealer(secret), 7) as replica:
        return replica.document("people/p1").project().full_name


async def test_a_copied_folder_does_not_open_without_the_passphrase(tmp_path: Path) -> None:
    device = tmp_path / "ipad"
    keys = unlock(device, PASSPHRASE)
    await _write_person(device, keys.replica_secret)
    stolen = tmp_path / "copy"
    shutil.copytree(device, stolen)

    for guess in (None, "", "wrong passphrase"):
        with pytest.raises(ConfigError, match="passphrase"):
            unlock(stolen, guess)
    # Nothing in the folder is the key or the secret in the clear.
    for path in stolen.iterdir():
        data = path.read_bytes()
        assert keys.replica_secret not in data and keys.device.to_bytes() not in data, path
        assert b"Zara" not in data, path
    # With the passphrase it opens: the same keys, the same replica.
    again = unlock(stolen, PASSPHRASE)
    assert again.replica_secret == keys.replica_secret
    assert again.device.public_bytes == keys.device.public_bytes
    assert await _read_person(stolen, again.replica_secret) == "Zara Khan"


async def test_the_device_folder_is_private(tmp_path: Path) -> None:
    device = tmp_path / "ipad"
    keys = unlock(device, PASSPHRASE)
    await _write_person(device, keys.replica_secret)
    (device / "notes.txt").write_text("left by someone")  # made 0644 by the umask
    unlock(device, PASSPHRASE)
    assert stat.S_IMODE(device.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in device.iterdir() if p.is_file()}
    assert {VAULT_FILE, "replica.db"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


async def test_a_paired_running_device_writes_nothing_others_can_read(tmp_path: Path) -> None:
    folder = tmp_path / "ipad"
    old_umask = os.umask(0o022)  # the usual default: new files 0644, folders 0755
    try:
        async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post("/api/devices/pairing-codes", json={"user_id": "t1-junior2"},
                                headers=await login(server, "admin@t1.test"))
            await pair(folder, server.url, r.json()["code"], "ipad")
            async with EdgeAgent(EdgeSettings(data_dir=folder)) as agent:
                await agent.write("people", None, {"full_name": "Zara Khan"})
                modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {IDENTITY_FILE, VAULT_FILE, TOKEN_FILE, "replica.db", "replica.db-wal"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


async def test_an_older_devices_plain_key_moves_into_the_vault(tmp_path: Path) -> None:
    device = tmp_path / "ipad"
    device.mkdir()
    old = DeviceKey.generate()
    (device / KEY_FILE).write_bytes(old.to_bytes())
    await _write_person(device, old.to_bytes())  # how older agents sealed the replica
    keys = unlock(device, PASSPHRASE)
    assert not (device / KEY_FILE).exists()
    assert keys.device.public_bytes == old.public_bytes  # still the paired identity
    assert await _read_person(device, keys.replica_secret) == "Zara Khan"
    with pytest.raises(ConfigError):
        unlock(device, "another passphrase")
