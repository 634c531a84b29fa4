"""A lead reassigned A → B → C while A's and B's devices are offline leaves both devices when
they come back: the hub keeps every scope change, not only the latest."""

from __future__ import annotations

import pytest

from core.identity import Principal, Role
from sync import protocol as p
from tests.hubkit import pair_device, running_hub

pytestmark = pytest.mark.anyio
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)


async def test_a_lead_reassigned_twice_while_offline_leaves_every_former_reader() -> None:
    async with running_hub() as server:
        writer = server.hub.writer
        await writer.write(DIRECTOR, "leads", "l1", {
            "tenant_id": "t1", "person_id": "p", "owner_id": "t1-junior_broker",
            "team_id": "north"}, create=True)
        a = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 71)
        b = await pair_device(server, "junior2@t1.test", "t1-junior2", 72)
        await a.connect()
        await a.wait_for(lambda: "leads/l1" in a.docs)
        await a.close()
        await writer.write(DIRECTOR, "leads", "l1", {"owner_id": "t1-junior2",
                                                     "team_id": "south"}, create=False)
        await b.connect()
        await b.wait_for(lambda: "leads/l1" in b.docs)
        await b.close()
        await writer.write(DIRECTOR, "leads", "l1", {"owner_id": "t1-senior_broker",
                                                     "team_id": "east"}, create=False)
        await writer.write(DIRECTOR, "people", "p-later", {"tenant_id": "t1",
                                                           "full_name": "Later"}, create=True)
        for device in (a, b):  # both come back with the cursors they had
            await device.connect()
            await device.wait_for(lambda d=device: "people/p-later" in d.docs)
            await device.close()
            assert "leads/l1" not in device.docs
            removed = {i.guid for i in device.items if i.kind is p.ItemKind.REMOVE}
            assert removed == {"leads/l1"}  # (B may hear it twice: harmless, and only this)
