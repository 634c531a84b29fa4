"""``GET /api/devices``: last seen, online now, what each device has still to receive (in its own
scope), refused updates, status after revocation; managers of the tenant only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from hub.server import HubServer
from hub.store import create_many
from tests.hubkit import login, pair_device, running_hub

pytestmark = pytest.mark.anyio


async def _list(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = await http.get("/api/devices", headers=headers)
    assert r.status_code == 200, r.text
    return {d["device_id"]: d for d in r.json()}


async def _leads(server: HubServer, owner: str, ids: list[str]) -> None:
    director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
    await create_many(server.hub.writer, director, [
        ("leads", i, {"tenant_id": "t1", "person_id": "p", "owner_id": owner,
                      "team_id": "north" if owner == "t1-junior_broker" else "south"})
        for i in ids])


async def test_devices_with_presence_backlog_and_refusals() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        admin = await login(server, "admin@t1.test")
        online = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 5001)
        away = await pair_device(server, "junior2@t1.test", "t1-junior2", 5002)
        await _leads(server, "t1-junior_broker", ["a1", "a2"])
        await _leads(server, "t1-junior2", ["b1", "b2", "b3"])

        listed = await _list(http, admin)
        assert [d["online"] for d in listed.values()] == [False, False]
        assert listed[online.device_id]["pending"] == 2  # its own two leads, not junior2's
        assert listed[away.device_id]["pending"] == 3
        assert listed[away.device_id]["last_seen"] is None
        assert listed[away.device_id]["user_name"] == "Second Junior"

        await online.connect()
        try:
            await online.wait_for(lambda: {"leads/a1", "leads/a2"} <= set(online.docs))
            await online.wait_for(lambda: online.batches > 0 and online.cursor > 0)
            listed = await _list(http, admin)
            assert listed[online.device_id]["online"] is True
            assert listed[online.device_id]["pending"] == 0
            # junior2's new lead is nothing for the online device, one more for the other.
            await _leads(server, "t1-junior2", ["b4"])
            listed = await _list(http, admin)
            assert (listed[online.device_id]["pending"], listed[away.device_id]["pending"]) == (
                0, 4)
            # An update the hub refuses for good (a lead owned by another broker).
            await online.write("leads/x1", {"tenant_id": "t1", "person_id": "p",
                                            "owner_id": "t1-junior2"}, "u-refused")
            await online.wait_for(lambda: "u-refused" in online.refusals)
            listed = await _list(http, admin)
            assert listed[online.device_id]["refused_updates"] == 1
        finally:
            await online.close()

        r = await http.post(f"/api/devices/{away.device_id}/revoke", headers=admin)
        assert r.status_code == 200
        listed = await _list(http, admin)
        assert listed[away.device_id]["status"] == "revoked"
        assert listed[online.device_id]["last_seen"] is not None

        director = await login(server, "sales_director@t1.test")
        assert set(await _list(http, director)) == set(listed)
        # A device is revoked by whoever may manage its user (as it is paired): not an admin's
        # by a director.
        admins = await pair_device(server, "admin@t1.test", "t1-admin", 5003)
        r = await http.post(f"/api/devices/{admins.device_id}/revoke", headers=director)
        assert (r.status_code, r.json()["error"]) == (403, "role_required")
        assert (await _list(http, admin))[admins.device_id]["status"] == "active"
        r = await http.post(f"/api/devices/{admins.device_id}/revoke", headers=admin)
        assert r.status_code == 200
        assert await _list(http, await login(server, "sales_director@t2.test")) == {}
        for role in ("senior_broker", "junior_broker"):
            r = await http.get("/api/devices", headers=await login(server, f"{role}@t1.test"))
            assert (r.status_code, r.json()["error"]) == (403, "role_required")
