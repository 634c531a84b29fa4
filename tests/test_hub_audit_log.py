"""The audit log: account management, sign-ins, lockouts, device pairing and revocation are
recorded; ``GET /api/admin-surface/audit`` filters and pages them, for managers of the tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.hubkit import PASSWORD, login, pair_device, running_hub

pytestmark = pytest.mark.anyio


async def test_acts_are_audited_and_the_log_filters_and_pages() -> None:
    async with running_hub(login_failures_per_account=2) as server, \
            httpx.AsyncClient(base_url=server.url) as http:
        admin = await login(server, "admin@t1.test")
        director = await login(server, "sales_director@t1.test")
        started = datetime.now(UTC)

        r = await http.post("/api/auth/users", headers=admin, json={
            "email": "new@t1.test", "password": "long enough pw", "full_name": "New",
            "role": "JUNIOR_BROKER", "team_id": "north"})
        new_id = r.json()["user_id"]
        await http.patch(f"/api/auth/users/{new_id}", headers=admin,
                         json={"role": "SENIOR_BROKER"})
        await http.post(f"/api/auth/users/{new_id}/password", headers=director,
                        json={"password": "another long one"})
        await http.post(f"/api/auth/users/{new_id}/disable", headers=director)
        await http.post(f"/api/auth/users/{new_id}/enable", headers=admin)
        device = await pair_device(server, "junior2@t1.test", "t1-junior2", 6001)
        await http.post(f"/api/devices/{device.device_id}/revoke", headers=director)
        for _ in range(3):  # two failures, then the account is locked
            await http.post("/api/auth/login", json={"email": "junior2@t1.test",
                                                     "password": "wrong password"})
        await http.post("/api/auth/login", json={"email": "nobody@t1.test",
                                                 "password": "wrong password"})
        junior = await login(server, "junior_broker@t1.test")
        r = await http.post("/api/crm/contacts", headers=junior,
                            json={"values": {"full_name": "Walk In"}})
        person = f"people/{r.json()['id']}"
        await http.patch(f"/api/crm/client-data/{r.json()['id']}", headers=junior,
                         json={"values": {"city": "Pune"}})
        await http.post("/api/auth/logout", headers=junior)

        async def page(who: dict[str, str] = admin, **params: Any) -> dict[str, Any]:
            r = await http.get("/api/admin-surface/audit", params=params, headers=who)
            assert r.status_code == 200, r.text
            return dict(r.json())

        def acts(body: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
            return [(e["action"], e["user_id"], e["target"]) for e in body["entries"]]

        assert acts(await page(target=new_id)) == [
            ("user.enable", "t1-admin", new_id), ("user.disable", "t1-sales_director", new_id),
            ("user.password_reset", "t1-sales_director", new_id),
            ("user.change", "t1-admin", new_id), ("user.create", "t1-admin", new_id)]
        change = (await page(action="user.change"))["entries"][0]
        assert change["detail"]["role"] == ["JUNIOR_BROKER", "SENIOR_BROKER"]
        assert acts(await page(action="device.")) == [
            ("device.revoke", "t1-sales_director", device.device_id),
            ("device.pair", "t1-junior2", device.device_id),
            ("device.pairing_code", "t1-admin", "t1-junior2")]
        assert acts(await page(action="login.", target="t1-junior2")) == [
            ("login.locked", None, "t1-junior2"), ("login.failed", None, "t1-junior2"),
            ("login.failed", None, "t1-junior2")]
        failed = (await page(action="login.failed"))["entries"][0]
        assert failed["detail"]["address"] == "127.0.0.1"
        assert acts(await page(user_id="t1-junior_broker")) == [
            ("logout", "t1-junior_broker", "t1-junior_broker"),
            ("write", "t1-junior_broker", None), ("write", "t1-junior_broker", None),
            ("login", "t1-junior_broker", "t1-junior_broker")]
        edits = (await page(target=person))["entries"]  # a record's guid is a target too
        assert [(e["action"], e["guid"]) for e in edits] == [("write", person)] * 2
        assert edits[0]["seq"] > edits[1]["seq"]

        # The accounts made from the terminal (here: the test's) are there too, by nobody.
        made = await page(action="user.create", target="t1-junior2")
        assert acts(made) == [("user.create", None, "t1-junior2")]
        assert made["entries"][0]["detail"]["role"] == "JUNIOR_BROKER"
        # Time range and paging: newest first, ``next_before`` walks to the end.
        everything = await page(limit=200)
        assert everything["next_before"] is None
        assert acts(await page(action="login", until=started.isoformat())) == [
            ("login", "t1-sales_director", "t1-sales_director"),
            ("login", "t1-admin", "t1-admin")]
        later = datetime.now(UTC) + timedelta(hours=1)
        assert (await page(since=later.isoformat()))["entries"] == []
        walked, before = [], None
        while True:
            body = await page(limit=4, **({"before": before} if before else {}))
            walked += [e["audit_id"] for e in body["entries"]]
            before = body["next_before"]
            if before is None:
                break
        assert walked == [e["audit_id"] for e in everything["entries"]]
        assert walked == sorted(walked, reverse=True)

        # Who may read it: managers, of their own tenant only.
        assert (await page(director, target=new_id))["entries"]
        t2 = await login(server, "sales_director@t2.test")
        assert (await page(t2, target=new_id))["entries"] == []
        senior = await login(server, "senior_broker@t1.test")
        r = await http.get("/api/admin-surface/audit", headers=senior)
        assert (r.status_code, r.json()["error"]) == (403, "role_required")
        for bad in ({"limit": 0}, {"limit": 201}, {"before": 0}, {"since": "yesterday"},
                    {"since": later.isoformat(), "until": started.isoformat()}):
            r = await http.get("/api/admin-surface/audit", params=bad, headers=admin)
            assert r.status_code == 422, bad


async def test_a_wrong_password_for_an_unknown_email_leaves_no_entry() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/auth/login", json={"email": "ghost@t1.test",
                                                     "password": PASSWORD})
        assert r.status_code == 401
        assert await server.hub.db.pool.fetchval(
            "SELECT count(*) FROM hub_audit WHERE action LIKE 'login%'") == 0
