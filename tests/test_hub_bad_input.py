"""Input no store can keep faithfully is refused as bad input before anything is committed:
NUL characters, unsafe integers, fields over their size limit, surrogate-splitting Text edits,
empty updates, over-long ids. Over REST the answer is 400/422, over sync a refusal or a close
code that says so; a stored document that is already invalid never makes honest pushes count
as offences."""

from __future__ import annotations

import asyncio
import resource

import httpx
import pycrdt as Y
import pytest
import websockets

from hub.gate import Gate
from hub.server import HubServer
from schema import collection
from sync import protocol as p
from sync.record import TRUSTED_LIMITS, RecordDoc
from sync.yupdate import ID, decode_state_vector, decode_update
from tests import hubkit
from tests.hubkit import login, pair_device, running_hub
from tests.test_yupdate_hazards import any_bytes, item, leb128, string_item, update

pytestmark = pytest.mark.anyio
PERSON = {"tenant_id": "t1", "full_name": "Zara Khan"}


async def test_bad_rest_input_is_a_400_or_422_never_a_crash() -> None:
    async with running_hub() as server:
        await _nul_anywhere_in_a_rest_request_is_a_400(server)
        await _values_over_limits_or_unsafe_are_refused(server)


async def _nul_anywhere_in_a_rest_request_is_a_400(server: HubServer) -> None:
    director = await login(server, "sales_director@t1.test")
    async with httpx.AsyncClient(base_url=server.url, headers=director) as http:
        r = await http.post("/api/crm/contacts", json={"values": {"full_name": "Ann"}})
        assert r.status_code == 201, r.text
        person_id = r.json()["id"]
        answers = [
            await http.get("/api/crm/contacts", params={"q": "a\x00b"}),
            await http.get("/api/crm/contacts/p%001"),
            await http.post("/api/crm/contacts", json={"values": {"full_name": "A\x00"}}),
            await http.patch(f"/api/crm/client-data/{person_id}",
                             json={"values": {"tags": ["vip", "x\x00"]}}),
            await http.post("/api/crm/tasks", json={"values": {"title\x00": "t"}}),
        ]
        for r in answers:
            assert r.status_code == 400, (r.request.url, r.status_code, r.text)
            assert r.json()["error"] == "nul_character"
        assert (await http.get(f"/api/crm/contacts/{person_id}")).json()["tags"] == []


async def _values_over_limits_or_unsafe_are_refused(server: HubServer) -> None:
    director = await login(server, "sales_director@t1.test")
    async with httpx.AsyncClient(base_url=server.url, headers=director,
                                 timeout=60) as http:
        person_id = (await http.post("/api/crm/contacts",
                                     json={"values": {"full_name": "Ann"}})).json()["id"]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        r = await http.patch(f"/api/crm/client-data/{person_id}",
                             json={"values": {"tags": [f"tag{i}" for i in range(6000)]}})
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        assert r.status_code == 422 and r.json()["error"] == "field_too_large", r.text
        assert "tags: 6000 elements exceed 100" in r.json()["problems"]
        assert grown_mb < 100, f"a refused tag list grew the hub by {grown_mb:.0f} MB"
        r = await http.patch(f"/api/crm/client-data/{person_id}",
                             json={"values": {"tags": [f"tag{i}" for i in range(100)]}})
        assert r.status_code == 200 and len(r.json()["tags"]) == 100
        logged = await server.hub.db.pool.fetchval("SELECT count(*) FROM hub_updates")
        r = await http.patch(f"/api/crm/client-data/{person_id}",  # the same again: no change
                             json={"values": {"tags": [f"tag{i}" for i in range(100)]}})
        assert r.status_code == 200 and len(r.json()["tags"]) == 100
        assert await server.hub.db.pool.fetchval("SELECT count(*) FROM hub_updates") == logged
        r = await http.patch(f"/api/crm/client-data/{person_id}",
                             json={"values": {"city": "x" * 501}})
        assert r.status_code == 422 and r.json()["error"] == "field_too_large"
        # an integer past 2^63 panicked the CRDT library inside the write
        r = await http.post("/api/sentinel/consent", json={"session_id": "s1"})
        assert r.status_code == 201, r.text
        for frames in (2**64, 2**53):
            r = await http.post("/api/sentinel/session/complete",
                                json={"session_id": "s1", "qd": 50, "frames_seen": frames})
            assert r.status_code == 422 and r.json()["error"] == "unsafe_value", r.text
        r = await http.post("/api/sentinel/session/complete",
                            json={"session_id": "s1", "qd": 50, "frames_seen": 2**53 - 1})
        assert r.status_code == 201, r.text


def _register(client: int, clock: int, key: str, value: bytes) -> bytes:
    """An update setting one register of the fields map (``value``: lib0 Any bytes)."""
    return update([(client, clock, [item(8, leb128(1) + value, key=key)])])


async def test_bad_sync_input_is_refused_before_commit_with_its_reason() -> None:
    async with running_hub(max_offences=50, throttle_after=50) as server:
        evil = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 100)
        good = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 200)
        await evil.connect()
        await good.connect()
        await _hostile_values_are_refused(server, evil)
        await _an_empty_update_is_acknowledged_and_never_committed(server, evil, good)
        await _a_surrogate_split_is_refused_and_the_stored_text_stays_sound(server, evil, good)
        await _hello_with_a_nul_or_an_over_long_device_id_gets_its_close_code(server)
        await evil.close()
        await good.close()


async def _logged(server: HubServer, guid: str) -> int:
    return int(await server.hub.db.pool.fetchval(
        "SELECT count(*) FROM hub_updates WHERE guid = $1", guid))


async def _hostile_values_are_refused(server: HubServer, dev: hubkit.TestDevice) -> None:
    await dev.write("people/p1", PERSON, "u-1")
    await dev.wait_for(lambda: "u-1" in dev.acks)
    clock = _state(dev.docs["people/p1"])[100]
    bigint = bytes([122]) + (2**60).to_bytes(8, "big")
    hostile = {
        "nul-value": _register(100, clock, "city", any_bytes("Pu\x00ne")),
        "nul-key": _register(100, clock, "ci\x00ty", any_bytes("Pune")),
        "nul-text": update([(100, clock, [string_item("a\x00", parent="notes")])]),
        "bigint": _register(100, clock, "city", bigint),
        "tags": update([(100, clock, [item(8, leb128(2000) + any_bytes("t") * 2000,
                                           parent="tags")])]),
    }
    await dev.push([p.PushItem(uid, "people/p1", data) for uid, data in hostile.items()])
    await dev.wait_for(lambda: set(hostile) <= set(dev.refusals))
    assert {uid: dev.refusals[uid].reason for uid in hostile} == {
        "nul-value": "nul_character", "nul-key": "nul_character",
        "nul-text": "nul_character", "bigint": "unsafe_integer",
        "tags": "content_mismatch"}  # tags is a retired Array root: it takes no inserts
    assert await _logged(server, "people/p1") == 1
    # the session is still open and honest work goes on
    await dev.write("people/p1", {"city": "Pune"}, "u-2")
    await dev.wait_for(lambda: "u-2" in dev.acks)


def _state(doc: RecordDoc) -> dict[int, int]:
    return decode_state_vector(doc.state_vector(), TRUSTED_LIMITS)


async def _an_empty_update_is_acknowledged_and_never_committed(
        server: HubServer, dev: hubkit.TestDevice, other: hubkit.TestDevice) -> None:
    await dev.write("people/p2", PERSON, "e-1")
    await dev.wait_for(lambda: "e-1" in dev.acks)
    await other.wait_for(lambda: "people/p2" in other.docs)
    seen = len(other.items)
    await dev.push([p.PushItem("empty", "people/p2", b"\x00\x00"),
                    p.PushItem("empty-new", "people/p3", b"\x00\x00")])
    await dev.wait_for(lambda: {"empty", "empty-new"} <= set(dev.acks))
    assert dev.acks["empty"] == dev.acks["empty-new"] == 0  # "the hub already held it"
    assert await _logged(server, "people/p2") == 1
    assert await _logged(server, "people/p3") == 0
    await dev.write("people/p2", {"city": "Pune"}, "e-2")  # fanned out: the next item
    await other.wait_for(lambda: len(other.items) > seen)
    assert [i.guid for i in other.items[seen:]] == ["people/p2"]


async def _a_surrogate_split_is_refused_and_the_stored_text_stays_sound(
        server: HubServer, evil: hubkit.TestDevice, writer: hubkit.TestDevice) -> None:
    await writer.write("people/p4", {**PERSON, "notes": "a😀b"}, "w-1")
    await writer.wait_for(lambda: "w-1" in writer.acks)
    state = await _stored(server, "people/p4")
    text = next(s for s in decode_update(state, TRUSTED_LIMITS).structs if s.text == "a😀b")
    high = ID(text.client, text.clock + 1)
    clock = _state(evil.doc("people/p4")).get(100, 0)
    split = update([(100, clock, [string_item("X", origin=high,
                                              right=ID(high.client, high.clock + 1))])])
    half = update([], {text.client: [(high.clock, 1)]})
    await evil.push([p.PushItem("split", "people/p4", split),
                     p.PushItem("half", "people/p4", half)])
    await evil.wait_for(lambda: {"split", "half"} <= set(evil.refusals))
    assert {evil.refusals[u].reason for u in ("split", "half")} == {"surrogate_split"}
    stored = await _stored(server, "people/p4")
    assert stored == state
    assert RecordDoc(collection("people"), "p4", state=stored).project().notes == "a😀b"


async def _stored(server: HubServer, guid: str) -> bytes:
    document = await server.hub.store.document("t1", guid)
    assert document is not None
    return document.state


async def _raw_hello(url: str, device_id: str) -> tuple[int | None, p.Message]:
    async with websockets.connect(url) as ws:
        await ws.send(p.encode(p.Hello(device_id, 0, (1,))))  # the encoder does not judge
        reply = p.decode(await ws.recv())  # type: ignore[arg-type]
        await asyncio.wait_for(ws.wait_closed(), 5)
        return ws.close_code, reply


async def _hello_with_a_nul_or_an_over_long_device_id_gets_its_close_code(
        server: HubServer) -> None:
    code, reply = await _raw_hello(server.sync_url, "dev\x00ice")
    assert code == p.CloseCode.PROTOCOL and isinstance(reply, p.Error)
    assert "NUL" in reply.message
    code, reply = await _raw_hello(server.sync_url, "d" * 300)
    assert code == p.CloseCode.TOO_LARGE and isinstance(reply, p.Error)
    assert reply.reason == "too_large"


async def test_a_stored_document_that_is_invalid_never_charges_honest_devices() -> None:
    """A document stored before a rule existed (here: a NUL in a register) refuses pushes as
    the hub's problem (``stored_invalid``), never as the device's offence."""
    async with running_hub(max_offences=2) as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 100)
        await dev.connect()
        await dev.write("people/p1", PERSON, "u-1")
        await dev.wait_for(lambda: "u-1" in dev.acks)
        honest = await _stored(server, "people/p1")
        doc = Y.Doc(client_id=999)
        doc.apply_update(honest)
        doc.get("fields", type=Y.Map)["city"] = "Pu\x00ne"
        await server.hub.db.pool.execute(  # an exact state, with no log rows after it
            "UPDATE hub_documents SET state = $1, state_seq = NULL, tail_rows = 0",
            bytes(doc.get_update()))
        # A running gate follows the log, not the stored bytes: the damage is found by a gate
        # that loads the document, as a hub started with the build that brought the rule.
        hub = server.hub
        hub.gate = Gate(hub.store, hub.sandbox, hub.limits, hot_documents=16)
        for n in range(4):
            await dev.write("people/p1", {"full_name": f"Zara {n}"}, f"h-{n}")
            await dev.wait_for(lambda n=n: f"h-{n}" in dev.refusals)
            assert dev.refusals[f"h-{n}"].reason == "stored_invalid"
            dev.docs.clear()  # the device rebuilds without the refused change
            dev.doc("people/p1").apply(honest)
        offences = await server.hub.db.pool.fetchval(
            "SELECT offences FROM hub_devices WHERE device_id = $1", dev.device_id)
        assert offences == 0
        await dev.close()
