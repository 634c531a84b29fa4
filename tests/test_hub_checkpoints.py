"""Document checkpoints: a large record edited many times keeps its stored state as a checkpoint
plus the log rows after it, and every reader (documents, snapshots, the hub's own writes,
compaction) gets the whole of it; a small record's state stays exact (real PostgreSQL, the hub's
gate and committer)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from core.identity import Principal, Role
from hub import store as store_module
from hub.gate import EXACT_STATE_BYTES, Admitted, Gate
from hub.service import Hub
from hub.storage.checkpoints import CHECKPOINT_ROWS
from hub.store import Committed
from schema import collection
from sync.record import RecordDoc
from tests.hubkit import running_hub

pytestmark = pytest.mark.anyio
PEOPLE = collection("people")
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
LONG_NOTES = " ".join(f"paragraph {n} of the site visit report" for n in range(500))
"""About 17,000 characters: a record larger than the gate hands over encoded."""


async def _push(hub: Hub, doc: RecordDoc, values: dict[str, Any], update_id: str) -> int:
    """One edit through the gate and the committer, as a device's push goes; its sequence."""
    (verdict,) = await hub.gate.admit_batch(DIRECTOR, {doc.client_id},
                                            [(doc.guid, doc.write(values), update_id)])
    assert isinstance(verdict, Admitted), verdict
    (result,) = await hub.committer.commit("t1", [verdict.change], user_id=DIRECTOR.user_id,
                                           device_id=None, principal=DIRECTOR)
    assert isinstance(result, Committed), result
    return result.seq


async def _stored_row(hub: Hub, guid: str) -> Any:
    return await hub.db.pool.fetchrow(
        "SELECT state, state_seq, tail_rows, updated_seq FROM hub_documents "
        "WHERE tenant_id = 't1' AND guid = $1", guid)


async def _edited_many_times(hub: Hub, edits: int) -> RecordDoc:
    doc = RecordDoc(PEOPLE, "p-long", client_id=4711)
    await _push(hub, doc, {"tenant_id": "t1", "full_name": "Long History", "notes": LONG_NOTES},
                "create")
    assert len(doc.encode_state()) > EXACT_STATE_BYTES
    for n in range(edits):
        await _push(hub, doc, {"city": f"visit {n}"}, f"edit-{n}")
        row = await _stored_row(hub, doc.guid)
        assert row["tail_rows"] < CHECKPOINT_ROWS  # the tail never outgrows a checkpoint
    return doc


async def test_a_record_edited_many_times_is_read_whole_though_its_state_is_a_checkpoint() -> None:
    async with running_hub() as server:
        hub = server.hub
        edits = 2 * CHECKPOINT_ROWS + 5
        doc = await _edited_many_times(hub, edits)
        row = await _stored_row(hub, doc.guid)
        assert row["state_seq"] is not None and 0 < row["tail_rows"] < CHECKPOINT_ROWS
        behind = RecordDoc(PEOPLE, "p-long", state=bytes(row["state"])).content()
        assert behind["city"] != doc.content()["city"]  # the column alone is behind

        stored = await hub.store.document("t1", doc.guid)
        assert stored is not None and stored.updated_seq == row["updated_seq"]
        assert RecordDoc(PEOPLE, "p-long", state=stored.state).content() == doc.content()
        (snapshot,) = [item for item in await hub.store.read_snapshots(DIRECTOR, "", 100)
                       if item.guid == doc.guid]
        assert RecordDoc(PEOPLE, "p-long", state=snapshot.data).content() == doc.content()
        states = await hub.storage.documents.states("t1")
        assert RecordDoc(PEOPLE, "p-long", state=states[doc.guid]).content() == doc.content()
        # A reader whose scope took the record in after its cursor gets one snapshot, from the
        # pull query and from the live feed alike.
        last = (await hub.store.high_water("t1"))[0]
        for items, _ in (await hub.store.read_updates(DIRECTOR, 0, 1000),
                         await hub.feed.read(DIRECTOR, 0, 1000, last=last)):
            (item,) = [i for i in items if i.guid == doc.guid]
            assert item.snapshot
            assert RecordDoc(PEOPLE, "p-long", state=item.data).content() == doc.content()


async def test_the_hubs_own_write_builds_on_the_tail_and_compaction_keeps_it() -> None:
    async with running_hub() as server:
        hub = server.hub
        doc = await _edited_many_times(hub, CHECKPOINT_ROWS + 3)
        assert (await _stored_row(hub, doc.guid))["tail_rows"] > 0
        result = await hub.writer.write(DIRECTOR, "people", "p-long", {"city": "Pune"},
                                        create=False)
        row = await _stored_row(hub, doc.guid)
        assert row["state_seq"] is None and row["tail_rows"] == 0  # it had the state at hand
        both = RecordDoc(PEOPLE, "p-long", state=bytes(row["state"])).content()
        assert both["city"] == "Pune" and both["notes"] == LONG_NOTES

        await _push(hub, doc, {"primary_phone": "+91 98000 00001"}, "late-1")
        await _push(hub, doc, {"primary_phone": "+91 98000 00002"}, "late-2")
        assert (await _stored_row(hub, doc.guid))["tail_rows"] == 2
        last = (await hub.store.high_water("t1"))[0]
        await hub.store.compact("t1", last)
        row = await _stored_row(hub, doc.guid)
        assert row["state_seq"] is None and row["tail_rows"] == 0  # written before its rows went
        kept = RecordDoc(PEOPLE, "p-long", state=bytes(row["state"])).content()
        assert kept["primary_phone"] == "+91 98000 00002" and kept["city"] == "Pune"
        assert result.seq < row["updated_seq"]


async def test_a_change_judged_while_the_one_before_waits_takes_the_gates_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate judges an edit on the state its previous, not yet committed, edit leads to;
    each commits in its own transaction, and neither is applied to the document again."""
    applied_again: list[str] = []
    current = store_module._Draft.current

    def counted(draft: Any) -> RecordDoc:
        applied_again.append(draft.guid)
        return current(draft)

    monkeypatch.setattr(store_module._Draft, "current", counted)
    async with running_hub() as server:
        hub = server.hub
        doc = RecordDoc(PEOPLE, "p-chain", client_id=4712)
        await _push(hub, doc, {"tenant_id": "t1", "full_name": "Chain"}, "create")
        verdicts = []
        for n in range(3):
            (verdict,) = await hub.gate.admit_batch(
                DIRECTOR, {4712}, [(doc.guid, doc.write({"city": f"City {n}"}), f"c{n}")])
            assert isinstance(verdict, Admitted)
            verdicts.append(verdict)
        for verdict in verdicts:
            (result,) = await hub.committer.commit("t1", [verdict.change],
                                                   user_id=DIRECTOR.user_id, device_id=None,
                                                   principal=DIRECTOR)
            assert isinstance(result, Committed)
        assert applied_again == []
        stored = await hub.store.document("t1", doc.guid)
        assert stored is not None
        assert RecordDoc(PEOPLE, "p-chain", state=stored.state).content()["city"] == "City 2"


async def test_a_small_records_state_stays_exact() -> None:
    """A record the size of most CRM records is written whole with every commit (encoding it
    costs less than applying a tail on every read)."""
    async with running_hub() as server:
        hub = server.hub
        doc = RecordDoc(PEOPLE, "p-small", client_id=4713)
        await _push(hub, doc, {"tenant_id": "t1", "full_name": "Small"}, "create")
        for n in range(5):
            await _push(hub, doc, {"city": f"City {n}"}, f"s{n}")
            row = await _stored_row(hub, doc.guid)
            assert row["state_seq"] is None and row["tail_rows"] == 0
            assert RecordDoc(PEOPLE, "p-small", state=bytes(row["state"])).content() == (
                doc.content())


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_checkpoints_hold_under_mixed_writers_and_compaction(seed: int) -> None:
    """Random turns of a large record's life: a device's edits through this hub's gate or a
    second hub process's, the hub's own writes, compaction at any point. After every turn the
    store reads the record exactly as the writers left it, and the tail never outgrows a
    checkpoint."""
    rng = random.Random(seed)
    async with running_hub() as server:
        hub = server.hub
        other = Gate(hub.store, hub.sandbox, hub.limits, hot_documents=16)
        doc = RecordDoc(PEOPLE, "p-mixed", client_id=4714)
        await _push(hub, doc, {"tenant_id": "t1", "full_name": "Mixed", "notes": LONG_NOTES},
                    "create")
        longest = 0
        for turn in range(80):
            roll = rng.random()
            if roll < 0.6:
                gate = hub.gate if rng.random() < 0.5 else other
                (verdict,) = await gate.admit_batch(
                    DIRECTOR, {4714}, [(doc.guid, doc.write({"city": f"c{turn}"}), f"m{turn}")])
                assert isinstance(verdict, Admitted), verdict
                results = await hub.committer.commit(
                    "t1", [verdict.change], user_id=DIRECTOR.user_id, device_id=None,
                    principal=DIRECTOR)
                if gate is other:  # its own hub's committer would tell it
                    other.settle([verdict.change], results)
                assert isinstance(results[0], Committed)
            elif roll < 0.8:
                await hub.writer.write(DIRECTOR, "people", "p-mixed",
                                       {"primary_phone": f"+91 98000 {turn:05d}"}, create=False)
                stored = await hub.store.document("t1", doc.guid)
                assert stored is not None
                doc.apply(stored.state)  # the device pulls the hub's write
            else:
                await hub.store.compact("t1", (await hub.store.high_water("t1"))[0])
            row = await _stored_row(hub, doc.guid)
            assert row["tail_rows"] < CHECKPOINT_ROWS
            longest = max(longest, row["tail_rows"])
            stored = await hub.store.document("t1", doc.guid)
            assert stored is not None
            assert RecordDoc(PEOPLE, "p-mixed", state=stored.state).content() == doc.content()
        assert longest > 1  # the record was read through a tail, not only whole
