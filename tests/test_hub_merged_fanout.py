"""Merged fan-out: the updates of one document a live session reads together reach the device as
one merged update, the device converges, a batch's cursor never skips what a merged item still
to come stands for, and a reader whose socket is busy gets what piled up as one item."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.settings import SyncLimits
from edge_agent.crypto import Sealer
from edge_agent.replica import Replica
from hub.pull_merge import Outgoing, UpdateMerger, resume_before
from hub.store import LogItem
from hub.sync_endpoint import SyncSession
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc
from tests.hubkit import pair_device, running_hub

pytestmark = pytest.mark.anyio
PEOPLE = collection("people")
PERSON = {"tenant_id": "t1", "full_name": "Zara Khan", "city": "Dubai"}


def _history(rng: random.Random, docs: int, edits: int) -> tuple[dict[str, bytes],
                                                                 list[LogItem]]:
    """Each document's first state, and a log of edits to them by several clients (each
    client knowing everything before its edit, as the hub's log guarantees)."""
    first: dict[str, bytes] = {}
    writers: dict[str, list[RecordDoc]] = {}
    for d in range(docs):
        origin = RecordDoc(PEOPLE, f"p{d}", client_id=1)
        origin.write({**PERSON, "full_name": f"Person {d}"})
        first[origin.guid] = origin.encode_state()
        writers[origin.guid] = [RecordDoc(PEOPLE, f"p{d}", client_id=10 + c,
                                          state=first[origin.guid]) for c in range(4)]
    log: list[LogItem] = []
    for seq in range(1, edits + 1):
        guid = rng.choice(sorted(writers))
        author = rng.choice(writers[guid])
        update = author.write({"city": f"city {seq}", "notes": f"call {seq}"})
        for other in writers[guid]:
            if other is not author:
                other.apply(update, in_order=True)
        log.append(LogItem(seq, guid, update, False))
    return first, log


def _replica(first: dict[str, bytes]) -> dict[str, RecordDoc]:
    return {guid: RecordDoc(PEOPLE, guid.partition("/")[2], client_id=99, state=state)
            for guid, state in first.items()}


def test_a_read_becomes_one_item_per_document_at_its_last_update_and_converges() -> None:
    first, log = _history(random.Random(1), docs=3, edits=30)
    merger = UpdateMerger(1 << 20)
    out = merger.merge(log)
    assert len(out) == 3 and {o.item.guid for o in out} == set(first)
    assert [o.item.seq for o in out] == sorted(o.item.seq for o in out)
    for o in out:
        mine = [i.seq for i in log if i.guid == o.item.guid]
        assert (o.first, o.item.seq) == (mine[0], mine[-1])
    merged, each = _replica(first), _replica(first)
    for o in out:
        merged[o.item.guid].apply(o.item.data, in_order=True)
    for item in log:
        each[item.guid].apply(item.data, in_order=True)
    assert {g: d.content() for g, d in merged.items()} == {g: d.content() for g, d in
                                                            each.items()}
    assert sum(len(o.item.data) for o in out) < sum(len(i.data) for i in log)
    assert merger.merges == 3
    merger.merge(log)  # a second session at the same cursor: remembered, not merged again
    assert merger.merges == 3


def test_snapshots_and_removals_stay_alone_and_big_runs_are_cut() -> None:
    _, log = _history(random.Random(2), docs=1, edits=6)
    guid = log[0].guid
    items = [*log[:3], LogItem(4, "people/other", b"snapshot", True),
             LogItem(5, "people/gone", b"", False, removed=True), *log[3:]]
    out = UpdateMerger(1 << 20).merge(items)
    assert [(o.item.guid, o.first, o.item.seq) for o in out] == [
        ("people/other", 4, 4), ("people/gone", 5, 5), (guid, 1, log[-1].seq)]
    budget = sum(len(i.data) for i in log[:2])
    cut = UpdateMerger(budget).merge(log)
    assert len(cut) > 1 and all(len(o.item.data) <= budget for o in cut)
    assert [o.first for o in cut] == sorted(o.first for o in cut)


def test_resuming_after_any_batch_of_a_split_page_misses_nothing() -> None:
    """A page of merged items split into frames: a device that stores a batch's cursor and
    reads again from it (unmerged, as after a reconnect) converges."""
    first, log = _history(random.Random(3), docs=4, edits=40)
    sent: list[p.PullBatch] = []
    hub = SimpleNamespace(limits=SyncLimits(max_frame_bytes=1200, max_batch_items=2),
                          settings=SimpleNamespace(push_window=4))
    session = SyncSession(None, hub)  # type: ignore[arg-type]

    async def capture(message: p.Message) -> None:
        assert isinstance(message, p.PullBatch)
        sent.append(message)

    session._send = capture  # type: ignore[method-assign]
    out = UpdateMerger(1 << 20).merge(log)
    asyncio.run(session._send_items(out, log[-1].seq, more=False))
    assert len(sent) > 1 and [b.more for b in sent] == [True] * (len(sent) - 1) + [False]
    expected = _replica(first)
    for item in log:
        expected[item.guid].apply(item.data, in_order=True)
    for k, batch in enumerate(sent):
        docs = _replica(first)
        for done in sent[:k + 1]:
            for item in done.items:
                docs[item.guid].apply(item.data, in_order=True)
        for item in log:  # the rest, read again from the stored cursor
            if item.seq > batch.cursor:
                docs[item.guid].apply(item.data, in_order=True)
        assert {g: d.content() for g, d in docs.items()} == {
            g: d.content() for g, d in expected.items()}, f"resumed after batch {k}"


def test_resume_before_is_below_every_item_still_to_come() -> None:
    rest = [Outgoing(LogItem(9, "a", b"", False), 4), Outgoing(LogItem(7, "b", b"", False), 6)]
    assert resume_before(rest, 12) == 3
    assert resume_before([], 12) == 12


async def test_an_edge_replica_applies_a_merged_item_beside_its_own_unsent_change(
        tmp_path: Path) -> None:
    first, log = _history(random.Random(4), docs=1, edits=12)
    guid = log[0].guid
    async with Replica(tmp_path / "r.db", Sealer(b"k" * 32), client_id=99) as replica:
        await replica.apply_pulled([(guid, first[guid], True)], 0)
        await replica.write("people", guid.partition("/")[2], {"primary_phone": "+971500000000"})
        (merged,) = UpdateMerger(1 << 20).merge(log)
        await replica.apply_pulled([(guid, merged.item.data, False)], merged.item.seq)
        record = replica.document(guid).project()
        assert record.city == f"city {log[-1].seq}" and record.primary_phone == "+971500000000"
        assert await replica.cursor() == log[-1].seq
        assert not replica.invalid


async def _pair_two(server: Any) -> tuple[Any, Any]:
    a = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 5001)
    b = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 5002)
    await a.connect()
    await b.connect()
    await a.write("people/p1", PERSON, "a-0")
    await b.wait_for(lambda: "people/p1" in b.docs and not b.docs["people/p1"].is_empty)
    return a, b


@pytest.mark.parametrize("merge", [True, False])
async def test_updates_committed_together_reach_a_device_as_one_item(merge: bool) -> None:
    async with running_hub(merge_pull=merge) as server:
        a, b = await _pair_two(server)
        b.items.clear()
        doc = a.doc("people/p1")
        edits = [p.PushItem(f"a-{n}", "people/p1", doc.write({"city": f"City {n}"}))
                 for n in range(1, 5)]
        await a.push(edits)  # one batch: one commit
        await a.wait_for(lambda: len(a.acks) == 5)
        last = a.acks["a-4"]
        await b.wait_for(lambda: b.cursor >= last)
        updates = [i for i in b.items if i.kind is p.ItemKind.UPDATE]
        if merge:
            assert [(i.guid, i.seq) for i in updates] == [("people/p1", last)]
        else:
            assert [i.seq for i in updates] == [a.acks[f"a-{n}"] for n in range(1, 5)]
        assert b.docs["people/p1"].content() == doc.content()
        assert b.docs["people/p1"].project().city == "City 4"
        await a.close()
        await b.close()


async def test_a_reader_whose_socket_is_busy_gets_what_piled_up_as_one_item() -> None:
    """While a session's send waits on its device, commits pile up in the log, not in a
    queue: the session makes no other send, and then sends them as one merged item."""
    async with running_hub() as server:
        a, b = await _pair_two(server)
        (session,) = [s for s in server.hub.connections.sessions("t1")
                      if s.device_id == b.device_id]
        ws: Any = session.ws  # type: ignore[attr-defined]
        release, blocked = asyncio.Event(), asyncio.Event()
        sends: list[int] = []
        send_bytes = ws.send_bytes

        async def slow_send(data: bytes) -> None:
            sends.append(len(data))
            blocked.set()
            await release.wait()
            await send_bytes(data)

        ws.send_bytes = slow_send
        b.items.clear()
        doc = a.doc("people/p1")
        for n in range(1, 7):  # six commits, each acknowledged before the next push
            await a.push([p.PushItem(f"a-{n}", "people/p1", doc.write({"city": f"C{n}"}))])
            await a.wait_for(lambda n=n: f"a-{n}" in a.acks)
            await asyncio.wait_for(blocked.wait(), 10)
        await asyncio.sleep(0.3)
        assert len(sends) == 1, "the session sent on while its device was not reading"
        release.set()
        await b.wait_for(lambda: b.cursor >= a.acks["a-6"])
        updates = [(i.seq, i.kind) for i in b.items]
        assert updates == [(a.acks["a-1"], p.ItemKind.UPDATE),
                           (a.acks["a-6"], p.ItemKind.UPDATE)]
        assert len(sends) == 2
        assert b.docs["people/p1"].content() == doc.content()
        await a.close()
        await b.close()


async def test_cursors_of_live_sessions_are_recorded_together() -> None:
    async with running_hub() as server:
        a, b = await _pair_two(server)
        doc = a.doc("people/p1")
        for n in range(1, 4):
            await a.push([p.PushItem(f"a-{n}", "people/p1", doc.write({"city": f"C{n}"}))])
            await a.wait_for(lambda n=n: f"a-{n}" in a.acks)
        await b.wait_for(lambda: b.cursor >= a.acks["a-3"])
        await server.hub.cursor_log.flush()
        rows = await server.hub.db.pool.fetch(
            "SELECT device_id, cursor, last_seen FROM hub_devices WHERE device_id = ANY($1)",
            [a.device_id, b.device_id])
        got = {r["device_id"]: r["cursor"] for r in rows}
        assert got[b.device_id] == b.cursor
        assert all(r["last_seen"] is not None for r in rows)
        await a.close()
        await b.close()
