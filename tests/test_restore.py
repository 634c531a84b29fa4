"""Back up a hub with pg_dump, restore it into a new database, and devices resume: one whose
cursor is behind the restored log pulls the rest, one whose cursor is ahead resyncs by
snapshots (the procedure in docs/operations.md)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import asyncpg
import httpx
import pgserver
import pytest

from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from sync import protocol as p
from tests import hubkit
from tests.hubkit import login, pair_device, running_hub
from tests.pg import _with_database, server_url

pytestmark = pytest.mark.anyio
TOOLS = Path(pgserver.__file__).parent / "pginstall" / "bin"
"""pg_dump and pg_restore of the pgserver wheel (16: they read a 15 or 16 server alike)."""


async def _contact(server: HubServer, name: str) -> str:
    admin = await login(server, "admin@t1.test")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/crm/contacts", headers=admin, json={"values": {
            "full_name": name}})
        r.raise_for_status()
        return f"people/{r.json()['id']}"


def _names(device: hubkit.TestDevice) -> set[str]:
    return {getattr(doc.project(), "full_name", "") for guid, doc in device.docs.items()
            if guid.startswith("people/")}


async def _resumed(server: HubServer, old: hubkit.TestDevice) -> hubkit.TestDevice:
    """The same device (key, id, cursor, replica) connecting to another hub."""
    device = hubkit.TestDevice(server, old.device_id, old.key, old.client_id, cursor=old.cursor,
                        docs=old.docs)
    await device.connect()
    return device


async def test_devices_resume_on_a_restored_backup(tmp_path: Path) -> None:
    async with running_hub() as server:
        behind = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 801)
        ahead = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 802)
        backed_up = [await _contact(server, "Asha One")]
        await behind.connect()
        await behind.wait_for(lambda: _names(behind) == {"Asha One"})
        await behind.close()  # offline from here, its cursor behind what the backup holds
        backed_up += [await _contact(server, "Bilal Two"), await _contact(server, "Chen Three")]
        dump = tmp_path / "hub.dump"
        subprocess.run([str(TOOLS / "pg_dump"), "--format=custom", "--file", str(dump),
                        server.hub.database_url], check=True)
        await ahead.connect()
        await _contact(server, "Dara After-Backup")  # committed after the dump: not restored
        await ahead.wait_for(lambda: "Dara After-Backup" in _names(ahead))
        await ahead.close()
        cursor_ahead = ahead.cursor

    restored = f"velocity_restore_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url())
    try:
        await conn.execute(f'CREATE DATABASE "{restored}"')
    finally:
        await conn.close()
    url = _with_database(server_url(), restored)
    subprocess.run([str(TOOLS / "pg_restore"), "--no-owner", "--dbname", url, str(dump)],
                   check=True)

    hub = Hub(HubSettings(database_url=url, sandbox_workers=1))
    async with HubServer(hub, host="127.0.0.1", port=0) as server2:
        last, _ = await hub.store.high_water("t1")
        assert cursor_ahead > last  # the device had pulled past what the backup holds
        back_behind = await _resumed(server2, behind)
        back_ahead = await _resumed(server2, ahead)
        await _contact(server2, "Esme Restored")
        restored_names = {"Asha One", "Bilal Two", "Chen Three", "Esme Restored"}
        await back_behind.wait_for(lambda: _names(back_behind) == restored_names)
        # the device ahead got every document again as snapshots, then the live log
        await back_ahead.wait_for(lambda: restored_names <= _names(back_ahead))
        snapshots = {i.guid for i in back_ahead.items if i.kind is p.ItemKind.SNAPSHOT}
        assert set(backed_up) <= snapshots
        assert back_ahead.cursor <= (await hub.store.high_water("t1"))[0]
        for device in (back_behind, back_ahead):
            await device.close()
