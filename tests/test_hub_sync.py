"""The hub's sync endpoint against real PostgreSQL and real websockets."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from core.settings import SyncLimits
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc
from tests.hubkit import login, pair_device, running_hub

pytestmark = pytest.mark.anyio

PERSON = {"tenant_id": "t1", "full_name": "Zara Khan", "city": "Dubai"}


async def test_push_is_applied_exactly_once_under_retries_and_duplicate_batches() -> None:
    async with running_hub() as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 1001)
        await dev.connect()
        update = dev.doc("people/p1").write(PERSON)
        item = p.PushItem("u-1", "people/p1", update)
        await dev.push([item, item])  # duplicate inside one batch
        await dev.wait_for(lambda: "u-1" in dev.acks)
        first_seq = dev.acks["u-1"]
        assert first_seq > 0
        await dev.push([item])  # a retry after the ack was lost
        await dev.close()
        await dev.connect()  # and again on a new connection
        dev.acks.clear()
        await dev.push([item])
        await dev.wait_for(lambda: "u-1" in dev.acks)
        assert dev.acks["u-1"] == first_seq
        await dev.close()
        count = await server.hub.db.pool.fetchval("SELECT count(*) FROM hub_updates")
        assert count == 1
        row = await server.hub.db.pool.fetchrow("SELECT full_name, city FROM crm_people")
        assert dict(row) == {"full_name": "Zara Khan", "city": "Dubai"}


async def test_pull_resumes_from_cursor_and_streams_live() -> None:
    async with running_hub() as server:
        a = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 2001)
        b = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 2002)
        await a.connect()
        await b.connect()
        await a.write("people/p1", PERSON, "a-1")
        await b.wait_for(lambda: "people/p1" in b.docs and not b.docs["people/p1"].is_empty)
        assert b.docs["people/p1"].project().city == "Dubai"
        await b.close()
        await a.write("people/p1", {"city": "Mumbai"}, "a-2")
        await a.write("people/p2", {**PERSON, "full_name": "Dev Shah"}, "a-3")
        await a.wait_for(lambda: {"a-2", "a-3"} <= set(a.acks))
        b.items.clear()
        await b.connect()  # resumes from the cursor it kept
        await b.wait_for(lambda: b.cursor >= a.acks["a-3"])
        assert [(i.guid, i.kind) for i in b.items] == [
            ("people/p1", p.ItemKind.UPDATE), ("people/p2", p.ItemKind.SNAPSHOT)]
        assert b.docs["people/p1"].project().city == "Mumbai"
        assert b.docs["people/p2"].project().full_name == "Dev Shah"
        await a.close()
        await b.close()


async def test_refusals_by_role_and_tenant_and_scope_filtering() -> None:
    async with running_hub() as server:
        junior = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 3001)
        junior2 = await pair_device(server, "junior2@t1.test", "t1-junior2", 3002)
        director = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 3003)
        for d in (junior, junior2, director):
            await d.connect()
        lead = {"tenant_id": "t1", "person_id": "p1", "owner_id": "t1-junior_broker"}
        await junior.write("leads/l1", lead, "j-1")
        await junior.write("leads/l2", {**lead, "owner_id": "t1-junior2"}, "j-2")
        await junior.write("people/p9", {**PERSON, "tenant_id": "t2"}, "j-3")
        await junior.write("opportunities/o1", {"tenant_id": "t1", "person_id": "p1",
                                                "owner_id": "t1-junior_broker",
                                                "stage": "BOOKING"}, "j-4")
        await junior.wait_for(lambda: len(junior.acks) + len(junior.refusals) == 4)
        assert "j-1" in junior.acks
        assert junior.refusals["j-2"].reason == "not_owner"
        assert junior.refusals["j-3"].reason == "other_tenant"
        assert junior.refusals["j-4"].reason == "manager_only_field"
        # The director sees the lead; the other junior never receives it.
        await director.wait_for(lambda: "leads/l1" in director.docs)
        await director.write("leads/l1", {"stage": "QUALIFIED"}, "d-1")
        await director.wait_for(lambda: "d-1" in director.acks)
        await junior.wait_for(lambda: junior.docs["leads/l1"].project().stage == "QUALIFIED")
        assert "leads/l1" not in junior2.docs
        # Reassigning the lead changes who receives it.
        await director.write("leads/l1", {"owner_id": "t1-junior2"}, "d-2")
        await junior2.wait_for(lambda: "leads/l1" in junior2.docs
                               and not junior2.docs["leads/l1"].is_empty)
        assert junior2.docs["leads/l1"].project().stage == "QUALIFIED"
        # ... and the previous owner's device is told to drop it; nobody else hears of it.
        await junior.wait_for(lambda: "leads/l1" not in junior.docs)
        removes = [(i.guid, i.data) for i in junior.items if i.kind is p.ItemKind.REMOVE]
        assert removes == [("leads/l1", b"")]
        assert not [i for d in (junior2, director) for i in d.items
                    if i.kind is p.ItemKind.REMOVE]
        for d in (junior, junior2, director):
            await d.close()
        # A device resyncing by snapshots (cursor 0) is told the same: snapshots only say
        # what is in scope, never what left it.
        for d in (junior, junior2):
            d.cursor, d.items, d.batches = 0, [], 0
            d.docs["leads/l1"] = RecordDoc(collection("leads"), "l1")
            await d.connect()
            await d.wait_for(lambda d=d: d.batches and d.cursor > 0)
            await d.close()
        assert "leads/l1" not in junior.docs
        assert [i.guid for i in junior.items if i.kind is p.ItemKind.REMOVE] == ["leads/l1"]
        assert not [i for i in junior2.items if i.kind is p.ItemKind.REMOVE]


async def test_revocation_closes_live_connection_and_refuses_reconnect() -> None:
    async with running_hub() as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 4001)
        await dev.connect()
        admin = await login(server, "admin@t1.test")
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post(f"/api/devices/{dev.device_id}/revoke", headers=admin)
            assert r.status_code == 200
        assert dev.ws is not None
        await asyncio.wait_for(dev.ws.wait_closed(), 5)
        assert dev.ws.close_code == p.CloseCode.FORBIDDEN
        with pytest.raises(ConnectionRefusedError, match="revoked"):
            await dev.connect()


async def test_forged_signature_and_replayed_challenge_are_refused() -> None:
    async with running_hub() as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 5001)
        async with websockets.connect(server.sync_url) as ws:
            await ws.send(p.encode(p.Hello(dev.device_id, 0, (5001,))))
            first = p.decode(await ws.recv())
            assert isinstance(first, p.Challenge)
            signature = dev.key.sign_challenge(first.nonce, dev.device_id)
            await ws.send(p.encode(p.Auth(signature)))
            assert isinstance(p.decode(await ws.recv()), p.Welcome)
        async with websockets.connect(server.sync_url) as ws:
            await ws.send(p.encode(p.Hello(dev.device_id, 0, (5001,))))
            second = p.decode(await ws.recv())
            assert isinstance(second, p.Challenge) and second.nonce != first.nonce
            await ws.send(p.encode(p.Auth(signature)))  # replay of the old answer
            err = p.decode(await ws.recv())
            assert isinstance(err, p.Error) and err.reason == "bad_signature"
            await ws.wait_closed()
            assert ws.close_code == p.CloseCode.AUTH


async def test_malformed_frames_close_only_that_connection() -> None:
    async with running_hub() as server:
        good = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 6001)
        await good.connect()
        for junk in (b"\x01\x63", b"\x02\x01", b"\x01\x01" + b"\xff" * 12):
            async with websockets.connect(server.sync_url) as ws:
                await ws.send(junk)
                err = p.decode(await ws.recv())
                assert isinstance(err, p.Error)
                await ws.wait_closed()
                assert ws.close_code in (p.CloseCode.PROTOCOL, p.CloseCode.UNSUPPORTED_VERSION)
        await good.write("people/p1", PERSON, "g-1")
        await good.wait_for(lambda: "g-1" in good.acks)
        await good.close()


async def test_two_hub_processes_fan_out_through_postgres() -> None:
    async with running_hub() as one, running_hub(one.hub.database_url) as two:
        a = await pair_device(one, "senior_broker@t1.test", "t1-senior_broker", 7001)
        b = await pair_device(two, "sales_director@t1.test", "t1-sales_director", 7002)
        await a.connect()
        await b.connect()
        await a.write("people/p1", PERSON, "a-1")
        await b.wait_for(lambda: "people/p1" in b.docs and not b.docs["people/p1"].is_empty)
        await b.write("people/p1", {"city": "Pune"}, "b-1")
        await a.wait_for(lambda: a.docs["people/p1"].project().city == "Pune")
        await a.close()
        await b.close()


async def test_several_offline_edits_of_one_record_in_one_batch_are_all_taken() -> None:
    async with running_hub() as server:
        dev = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 8001)
        await dev.connect()
        doc = dev.doc("people/p1")
        updates = [doc.write(PERSON), doc.write({"city": "Goa"}),
                   doc.write({"notes": "Two kids; wants a garden."}), doc.write({"city": "Pune"})]
        await dev.push([p.PushItem(f"o-{i}", "people/p1", u) for i, u in enumerate(updates)])
        await dev.wait_for(lambda: len(dev.acks) + len(dev.refusals) == 4)
        assert not dev.refusals
        assert sorted(dev.acks.values()) == list(range(1, 5))
        row = await server.hub.db.pool.fetchrow("SELECT city, notes FROM crm_people")
        assert dict(row) == {"city": "Pune", "notes": "Two kids; wants a garden."}
        await dev.close()


async def test_a_cursor_behind_the_compaction_horizon_gets_snapshots() -> None:
    async with running_hub() as server:
        a = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 9001)
        b = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 9002)
        await a.connect()
        await b.connect()
        await a.write("people/p1", PERSON, "a-1")
        await b.wait_for(lambda: "people/p1" in b.docs and not b.docs["people/p1"].is_empty)
        await b.close()
        old_cursor = b.cursor
        await a.write("people/p1", {"city": "Goa"}, "a-2")
        await a.write("people/p2", {**PERSON, "full_name": "Dev Shah"}, "a-3")
        await a.wait_for(lambda: {"a-2", "a-3"} <= set(a.acks))
        dropped = await server.hub.store.compact("t1", horizon=a.acks["a-3"])
        assert dropped == 3
        b.items.clear()
        b.cursor = old_cursor
        await b.connect()
        await b.wait_for(lambda: b.cursor >= a.acks["a-3"])
        assert {(i.guid, i.kind) for i in b.items} == {
            ("people/p1", p.ItemKind.SNAPSHOT), ("people/p2", p.ItemKind.SNAPSHOT)}
        assert b.docs["people/p1"].project().city == "Goa"
        await a.close()
        await b.close()


async def test_pages_are_split_into_frames_the_device_accepts() -> None:
    """A page of big documents must never exceed the device's frame limit: the hub splits it
    into several pull batches, and a device resuming between them misses nothing."""
    limits = SyncLimits(max_frame_bytes=4096)
    async with running_hub(limits=limits, pull_batch=1000) as server:
        a = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 2101)
        b = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 2102)
        await a.connect()
        notes = "Prefers a sea view and a high floor. " * 10
        for i in range(30):
            await a.write(f"people/p{i}", {**PERSON, "full_name": f"Person {i}",
                                           "notes": notes}, f"c-{i}")
        await a.wait_for(lambda: len(a.acks) == 30)
        await b.connect()  # bootstrap: one page of snapshots, several frames
        await b.wait_for(lambda: sum(not d.is_empty for d in b.docs.values()) == 30)
        assert b.batches > 3
        await b.close()
        for i in range(30):
            await a.write(f"people/p{i}", {"city": f"City {i}",
                                           "notes": f"Budget {i} Cr, ready to move. " * 12},
                          f"u-{i}")
        await a.wait_for(lambda: len(a.acks) == 60)
        b.batches = 0
        await b.connect()  # resume: one page of updates, several frames
        await b.wait_for(lambda: all(b.docs[f"people/p{i}"].project().city == f"City {i}"
                                     for i in range(30)))
        assert b.batches > 1
        await a.close()
        await b.close()


async def test_commits_a_device_may_not_read_send_it_nothing_until_one_it_may(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hub import sync_endpoint

    monkeypatch.setattr(sync_endpoint, "SEEN_INTERVAL_S", 60.0)  # no periodic cursor bump
    async with running_hub() as server:
        junior = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 9001)
        other = await pair_device(server, "junior2@t1.test", "t1-junior2", 9002)
        for d in (junior, other):
            await d.connect()
            # its bootstrap page and the "caught up" batch after it, before anything is written
            # (else a record written meanwhile comes in the bootstrap and one more batch follows)
            await d.wait_for(lambda d=d: d.batches == 2)
        await junior.write("people/p0", PERSON, "j-p0")  # people are the whole tenant's
        await other.wait_for(lambda: "people/p0" in other.docs)
        told = other.batches
        for n in range(5):  # the first junior's own leads: not the second's to read
            await junior.write(f"leads/l{n}", {"tenant_id": "t1", "person_id": f"p{n}",
                                               "owner_id": "t1-junior_broker"}, f"j-{n}")
        await junior.wait_for(lambda: len(junior.acks) == 5)
        await junior.write("people/p1", PERSON, "j-p")
        await other.wait_for(lambda: "people/p1" in other.docs)
        await junior.wait_for(lambda: "j-p" in junior.acks)  # the ack may come after the pull
        assert other.batches == told + 1, "empty pull batches were sent for unreadable commits"
        assert other.cursor == junior.acks["j-p"]
        assert not any(i.guid.startswith("leads/") for i in other.items)
        await junior.close()
        await other.close()


async def test_a_push_is_judged_on_what_is_stored_after_a_write_through_another_door() -> None:
    """The gate keeps the state it last judged a document on; a REST write in between (a
    director reassigning the lead) makes it judge the next push on the stored state."""
    from core.identity import Principal, Role

    async with running_hub() as server:
        junior = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 9101)
        await junior.connect()
        lead = {"tenant_id": "t1", "person_id": "p1", "owner_id": "t1-junior_broker"}
        await junior.write("leads/l1", lead, "j-1")
        await junior.write("leads/l1", {"source": "walk-in"}, "j-2")
        await junior.wait_for(lambda: {"j-1", "j-2"} <= set(junior.acks))
        director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
        await server.hub.writer.write(director, "leads", "l1", {"owner_id": "t1-junior2"},
                                      create=False)
        await junior.write("leads/l1", {"notes": "still mine?"}, "j-3")
        await junior.wait_for(lambda: "j-3" in junior.acks or "j-3" in junior.refusals)
        assert "j-3" in junior.refusals and junior.refusals["j-3"].reason == "not_owner"
        row = await server.hub.db.pool.fetchrow(
            "SELECT owner_id, source, notes FROM crm_leads WHERE id = 'l1'")
        assert dict(row) == {"owner_id": "t1-junior2", "source": "walk-in", "notes": ""}
        await junior.close()
