"""The reference client, written from the exported contract alone, against a running hub."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from core.auth import DeviceKey
from ios_bridge.contract import export
from ios_bridge.pairing import sign_payload
from ios_bridge.reference_client import Contract, ContractError, ReferenceDevice
from sync import protocol as p
from tests.hubkit import login, pair_device, running_hub
from tests.test_ios_pairing import _reencode

pytestmark = pytest.mark.anyio

PERSON = {"tenant_id": "t1", "full_name": "Zara Khan", "city": "Dubai"}


async def issue_qr_text(server: object, user_id: str, hub_key: DeviceKey,
                        expires_in: int = 600) -> str:
    """What an admin shows: a pairing code from the hub, in a payload signed by its key."""
    admin = await login(server, "admin@t1.test")  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=server.url) as http:  # type: ignore[attr-defined]
        r = await http.post("/api/devices/pairing-codes", headers=admin,
                            json={"user_id": user_id, "device_kind": "ipad"})
        r.raise_for_status()
    payload = sign_payload(hub_key, server.url, r.json()["code"],  # type: ignore[attr-defined]
                           int(time.time()) + expires_in)
    return payload.to_text()


async def test_pairs_bootstraps_pushes_and_pulls(tmp_path: Path) -> None:
    export(tmp_path)
    contract = Contract(tmp_path / f"v{p.PROTOCOL_VERSION}")
    hub_key = DeviceKey.generate()
    async with running_hub() as server:
        other = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 7001)
        await other.connect()
        await other.write("people/p1", PERSON, "o-1")
        await other.write("leads/l1", {"tenant_id": "t1", "person_id": "p1",
                                       "owner_id": "t1-senior_broker"}, "o-2")
        await other.wait_for(lambda: {"o-1", "o-2"} <= set(other.acks))

        ipad = ReferenceDevice(contract, client_id=7002)
        answer = await ipad.pair(await issue_qr_text(server, "t1-senior_broker", hub_key))
        assert answer["user_id"] == "t1-senior_broker"
        await ipad.connect()  # handshake, then the bootstrap up to `more = false`
        assert ipad.welcome["role"] == "SENIOR_BROKER"
        assert ipad.cursor >= other.acks["o-2"]
        assert ipad.records["people/p1"].content()["city"] == "Dubai"
        assert ipad.records["leads/l1"].content()["stage"] == "NEW"

        # push: an edit and a new record, both acknowledged and projected by the hub
        edit = await ipad.push("people/p1", {"city": "Mumbai", "notes": "Wants a sea view."})
        new = await ipad.push("people/p2", {**PERSON, "full_name": "Dev Shah",
                                            "tags": ["vip"]})
        await ipad.answered(edit)
        await ipad.answered(new)
        assert ipad.acks[edit] > 0 and ipad.acks[new] > 0, ipad.refusals
        row = await server.hub.db.pool.fetchrow(
            "SELECT city, notes FROM crm_people WHERE id = 'p1'")
        assert dict(row) == {"city": "Mumbai", "notes": "Wants a sea view."}
        await other.wait_for(lambda: "people/p2" in other.docs
                             and not other.docs["people/p2"].is_empty)
        assert other.docs["people/p2"].project().tags == ["vip"]

        # a refusal, with its reason, for a record of another tenant
        refused = await ipad.push("people/p9", {**PERSON, "tenant_id": "t2"})
        await ipad.answered(refused)
        assert ipad.refusals[refused]["reason"] == "other_tenant"

        # pull: a live change made on another device
        await other.write("leads/l1", {"stage": "QUALIFIED"}, "o-3")
        await ipad.read_until(lambda _: ipad.records["leads/l1"].content()["stage"]
                              == "QUALIFIED")
        cursor = ipad.cursor
        await ipad.close()

        # resume from the stored cursor: nothing old again, the new change arrives
        await other.write("people/p1", {"city": "Pune"}, "o-4")
        await other.wait_for(lambda: "o-4" in other.acks)
        await ipad.connect()
        assert ipad.cursor > cursor
        assert ipad.records["people/p1"].content()["city"] == "Pune"
        await ipad.close()
        await other.close()


async def test_an_expired_or_forged_payload_is_refused_before_pairing(tmp_path: Path) -> None:
    export(tmp_path)
    contract = Contract(tmp_path / f"v{p.PROTOCOL_VERSION}")
    async with running_hub() as server:
        expired = await issue_qr_text(server, "t1-senior_broker", DeviceKey.generate(),
                                      expires_in=-1)
        with pytest.raises(ContractError) as refused:
            await ReferenceDevice(contract, client_id=7003).pair(expired)
        assert refused.value.code == "pairing_payload_expired"
        good = await issue_qr_text(server, "t1-senior_broker", DeviceKey.generate())
        forged = _reencode(good, hub_url="http://127.0.0.1:9")  # pointed elsewhere
        with pytest.raises(ContractError) as refused:
            await ReferenceDevice(contract, client_id=7004).pair(forged)
        assert refused.value.code == "bad_pairing_signature"
        ipad = ReferenceDevice(contract, client_id=7005)
        assert (await ipad.pair(good))["user_id"] == "t1-senior_broker"
