"""The reference client, written from the exported contract alone, against a running hub."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from core.auth import DeviceKey
from hub.identity import identity_key
from hub.server import HubServer
from ios_bridge.contract import export
from ios_bridge.pairing import sign_payload, verify_payload
from ios_bridge.reference_client import Contract, ContractError, ReferenceDevice
from sync import protocol as p
from tests.hubkit import PASSWORD, login, pair_device, running_hub
from tests.test_ios_pairing import _reencode
from tests.webos.kit import signed_in

pytestmark = pytest.mark.anyio

PERSON = {"tenant_id": "t1", "full_name": "Zara Khan", "city": "Dubai"}


async def issue_qr_text(server: HubServer, user_id: str) -> str:
    """What an admin shows: a pairing code the hub issued, signed by the hub's key."""
    admin = await login(server, "admin@t1.test")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/devices/pairing-qr", headers=admin,
                            json={"user_id": user_id, "device_kind": "ipad"})
        r.raise_for_status()
    return str(r.json()["payload"])


def scan(image: np.ndarray) -> str:
    """The QR code's text, as a phone's scanner reads it (OpenCV's classic detector misses
    about one code in twelve that its ArUco-based detector reads)."""
    for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
        text = detector.detectAndDecode(image)[0]
        if text:
            return str(text)
    raise AssertionError("no QR code found")


async def issue_code(server: HubServer, user_id: str) -> str:
    admin = await login(server, "admin@t1.test")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/devices/pairing-codes", headers=admin,
                            json={"user_id": user_id, "device_kind": "ipad"})
        r.raise_for_status()
    return str(r.json()["code"])


async def test_pairs_bootstraps_pushes_and_pulls(tmp_path: Path) -> None:
    export(tmp_path)
    contract = Contract(tmp_path / f"v{p.PROTOCOL_VERSION}")
    async with running_hub() as server:
        other = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 7001)
        await other.connect()
        await other.write("people/p1", PERSON, "o-1")
        await other.write("leads/l1", {"tenant_id": "t1", "person_id": "p1",
                                       "owner_id": "t1-senior_broker"}, "o-2")
        await other.wait_for(lambda: {"o-1", "o-2"} <= set(other.acks))

        ipad = ReferenceDevice(contract, client_id=7002)
        answer = await ipad.pair(await issue_qr_text(server, "t1-senior_broker"))
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

        # refusals, with their reasons; the replica goes back to what the hub confirmed
        refused = await ipad.push("people/p9", {**PERSON, "tenant_id": "t2"})
        await ipad.answered(refused)
        assert ipad.refusals[refused]["reason"] == "other_tenant"
        assert "tenant_id" not in ipad.records["people/p9"].content()
        refused = await ipad.push("leads/l1", {"owner_id": "t1-junior_broker"})
        assert ipad.records["leads/l1"].content()["owner_id"] == "t1-junior_broker"
        await ipad.answered(refused)
        assert ipad.refusals[refused]["reason"] == "reassign_forbidden"
        assert ipad.records["leads/l1"].content()["owner_id"] == "t1-senior_broker"
        after = await ipad.push("leads/l1", {"timeline": "3 months"})  # the next edit lands
        await ipad.answered(after)
        assert ipad.acks.get(after, 0) > 0, ipad.refusals.get(after)

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


async def test_expired_forged_or_foreign_payloads_are_refused_before_pairing(
        tmp_path: Path) -> None:
    export(tmp_path)
    contract = Contract(tmp_path / f"v{p.PROTOCOL_VERSION}")
    async with running_hub() as server:
        hub_key = await identity_key(server.hub.storage.settings)
        expired = sign_payload(hub_key, server.url, await issue_code(server, "t1-senior_broker"),
                               int(time.time()) - 1).to_text()
        refusals = {}
        for name, text in (
            ("expired", expired),
            # a field changed after signing
            ("tampered", _reencode(await issue_qr_text(server, "t1-senior_broker"),
                                   hub_url="http://127.0.0.1:9")),
            # self-consistent, signed by a key the hub at that URL does not hold
            ("foreign", sign_payload(DeviceKey.generate(), server.url,
                                     await issue_code(server, "t1-senior_broker"),
                                     int(time.time()) + 600).to_text()),
        ):
            with pytest.raises(ContractError) as refused:
                await ReferenceDevice(contract, client_id=7003).pair(text)
            refusals[name] = refused.value.code
        assert refusals == {"expired": "pairing_payload_expired",
                            "tampered": "bad_pairing_signature",
                            "foreign": "hub_key_mismatch"}
        devices = await server.hub.db.pool.fetchval("SELECT count(*) FROM hub_devices")
        assert devices == 0  # no code was redeemed


async def test_cli_and_webos_render_qr_codes_a_device_pairs_with(tmp_path: Path) -> None:
    export(tmp_path / "contract")
    contract = Contract(tmp_path / "contract" / f"v{p.PROTOCOL_VERSION}")
    png = tmp_path / "pair.png"
    async with running_hub() as server:
        result = await asyncio.to_thread(
            CliRunner().invoke, app,
            ["ios", "pairing-qr", "--hub-url", server.url, "--user", "t1-senior_broker",
             "--email", "admin@t1.test", "--out", str(png)],
            env={"VELOCITY_ADMIN_PASSWORD": PASSWORD})
        assert result.exit_code == 0, result.output
        text = scan(cv2.imread(str(png)))
        assert verify_payload(text).fingerprint in result.output
        assert (await ReferenceDevice(contract, client_id=7101).pair(text))["kind"] == "ipad"

        admin = await login(server, "admin@t1.test")
        async with httpx.AsyncClient(base_url=server.url, headers=admin) as http:
            r = await http.post("/api/devices/pairing-qr.png",
                                json={"user_id": "t1-junior_broker"})
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            junior = await login(server, "junior_broker@t1.test")
            denied = await http.post("/api/devices/pairing-qr", headers=junior,
                                     json={"user_id": "t1-junior_broker"})
            assert denied.status_code == 403
            bad_nonce = await http.get("/api/hub/identity", params={"nonce": "00"})
            assert bad_nonce.status_code == 422
        image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        text = scan(image)
        assert r.headers["x-pairing-code"] == verify_payload(text).code
        paired = await ReferenceDevice(contract, client_id=7102).pair(text)
        assert paired["user_id"] == "t1-junior_broker"

        # the WebOS devices page: the PNG inline, beside the code and fingerprint it shows
        async with signed_in(server, "sales_director@t1.test") as (director, csrf):
            page = await director.post("/admin/devices/pairing", data={
                "csrf_token": csrf, "user_id": "t1-senior_broker", "device_kind": "ipad"})
        assert page.status_code == 200, page.text
        png_b64 = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page.text)
        assert png_b64 is not None
        image = cv2.imdecode(np.frombuffer(base64.b64decode(png_b64[1]), np.uint8),
                             cv2.IMREAD_COLOR)
        text = scan(image)
        payload = verify_payload(text)
        assert f'<code id="pairing-code">{payload.code}</code>' in page.text
        assert payload.fingerprint in page.text and payload.hub_url == server.url
        paired = await ReferenceDevice(contract, client_id=7103).pair(text)
        assert paired["user_id"] == "t1-senior_broker"
