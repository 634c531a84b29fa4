"""The documents the gate keeps between batches follow every commit (from any device and any hub
process) and are never ahead of the store after a refusal (real hubs on real PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from core.errors import PermissionDenied
from core.identity import Principal, Role
from core.settings import SyncLimits
from hub.gate import Admitted, AlreadyHeld, Gate, Refused
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import Committed
from schema import collection
from sync.record import EMPTY_UPDATE, TRUSTED_LIMITS, RecordDoc
from sync.ycheck import OriginIndex
from sync.yupdate import ID, decode_state_vector
from tests.hubkit import running_hub
from tests.pg import fresh_database

pytestmark = pytest.mark.anyio
PEOPLE = collection("people")
LEADS = collection("leads")
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)


@asynccontextmanager
async def _second_hub(url: str) -> AsyncIterator[Hub]:
    """Another hub process on the same database (its own gate, sandbox and committer)."""
    async with Hub(HubSettings(database_url=url, sandbox_workers=1), SyncLimits()) as hub:
        yield hub


def _same_index(kept: OriginIndex, state: bytes) -> None:
    """``kept`` places every held clock, and holds the same clocks and deletions, as an index
    built from ``state`` from scratch."""
    fresh = OriginIndex.from_state(state, TRUSTED_LIMITS)
    assert dict(kept.state_vector) == dict(fresh.state_vector)
    for client, end in fresh.state_vector.items():
        for clock in range(end):
            at = ID(client, clock)
            assert kept.lookup(at) == fresh.lookup(at), at
            assert kept.opens_live_pair(client, clock) == fresh.opens_live_pair(client, clock)
    assert kept._deleted == fresh._deleted  # merged ranges: one normal form


def _edit(rng: random.Random, doc: RecordDoc, step: int) -> bytes:
    """A random edit: text inserted or deleted anywhere in the notes (often inside another
    writer's run), a register, or a set member."""
    notes = str(doc.content()["notes"])
    kind = rng.randrange(4)
    if kind == 0 and notes:
        at = rng.randrange(len(notes))
        return doc.edit_text("notes", at, delete=min(rng.randint(1, 4), len(notes) - at))
    if kind <= 1:
        return doc.edit_text("notes", rng.randint(0, len(notes)), insert=f"w{step} ")
    if kind == 2:
        return doc.write({"city": f"City {step}"})
    return doc.write({"tags": sorted({f"t{rng.randrange(6)}", f"t{step % 5}"})})


async def test_kept_documents_equal_fresh_ones_after_many_updates_from_two_hubs() -> None:
    """Two hub processes take turns judging edits of one record by three writers (one of them
    writing through the REST path, which never passes a gate): after every commit, the gate
    that judged the last edit keeps exactly the stored document, and its origin index agrees
    everywhere with one built from the stored state."""
    url = await fresh_database()
    rng = random.Random(7)
    async with running_hub(url) as server, _second_hub(url) as other:
        hubs = [server.hub, other]
        seed = RecordDoc(PEOPLE, "p-kept", client_id=61)
        (created,) = await hubs[0].gate.admit_batch(DIRECTOR, {61}, [(
            seed.guid, seed.write({"tenant_id": "t1", "full_name": "Kept Client"}), "c")])
        assert isinstance(created, Admitted)
        await hubs[0].committer.commit("t1", [created.change], user_id=DIRECTOR.user_id,
                                       device_id=None, principal=DIRECTOR)
        writers = {n: RecordDoc(PEOPLE, "p-kept", client_id=n, state=seed.encode_state())
                   for n in (62, 63)}
        checked = 0
        for step in range(120):
            stored = await hubs[0].store.document("t1", seed.guid)
            assert stored is not None
            if step % 9 == 8:  # a director's edit through REST: in the log, through no gate
                await hubs[step % 2].writer.write(DIRECTOR, "people", "p-kept",
                                                  {"city": f"REST {step}"}, create=False)
                continue
            client = 62 + step % 2
            writer = writers[client]
            writer.apply(RecordDoc(PEOPLE, "p-kept", state=stored.state).diff(
                writer.state_vector()))
            update = _edit(rng, writer, step)
            hub = hubs[rng.randrange(2)]
            (verdict,) = await hub.gate.admit_batch(DIRECTOR, {client},
                                                    [(seed.guid, update, f"u{step}")])
            if update == EMPTY_UPDATE:  # an edit that changed nothing (the same tags)
                assert isinstance(verdict, AlreadyHeld), verdict
                continue
            assert isinstance(verdict, Admitted), verdict
            (result,) = await hub.committer.commit("t1", [verdict.change],
                                                   user_id=DIRECTOR.user_id, device_id=None,
                                                   principal=DIRECTOR)
            assert isinstance(result, Committed)
            kept = hub.gate.kept("t1", seed.guid)
            assert kept is not None
            now = await hub.store.document("t1", seed.guid)
            assert now is not None
            held, fresh = (RecordDoc(PEOPLE, "p-kept", state=s) for s in (kept.state, now.state))
            assert held.content() == fresh.content()
            assert (decode_state_vector(held.state_vector(), TRUSTED_LIMITS)
                    == decode_state_vector(fresh.state_vector(), TRUSTED_LIMITS))
            _same_index(kept.index, now.state)
            checked += 1
        assert checked > 90
        # the hubs caught up from the log, not by loading: their sandboxes kept the page too
        assert sum(h.sandbox.stats.kept_missed for h in hubs) < checked // 2


async def test_a_change_refused_at_commit_leaves_nothing_ahead_of_the_store() -> None:
    """A junior's edit passed the gate (and is in the document it keeps) while the lead was
    theirs; a director reassigns it before the edit commits, so the commit refuses it: the
    gate drops what it kept, and the next update is judged on exactly what is stored."""
    async with running_hub() as server:
        hub = server.hub
        junior = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, "north")
        lead = RecordDoc(LEADS, "l-kept", client_id=81)
        (created,) = await hub.gate.admit_batch(junior, {81}, [(lead.guid, lead.write({
            "tenant_id": "t1", "person_id": "p1", "owner_id": "t1-junior_broker"}), "c")])
        assert isinstance(created, Admitted)
        await hub.committer.commit("t1", [created.change], user_id=junior.user_id,
                                   device_id=None, principal=junior)
        (edit,) = await hub.gate.admit_batch(
            junior, {81}, [(lead.guid, lead.write({"notes": "still mine"}), "e")])
        assert isinstance(edit, Admitted)
        kept = hub.gate.kept("t1", lead.guid)
        assert kept is not None and "still mine" in str(
            RecordDoc(LEADS, "l-kept", state=kept.state).content()["notes"])
        await hub.writer.write(DIRECTOR, "leads", "l-kept", {"owner_id": "t1-junior2"},
                               create=False)
        (result,) = await hub.committer.commit("t1", [edit.change], user_id=junior.user_id,
                                               device_id=None, principal=junior)
        assert isinstance(result, PermissionDenied)
        assert hub.gate.kept("t1", lead.guid) is None  # it held the refused edit: dropped
        director_doc = RecordDoc(LEADS, "l-kept", client_id=82)
        stored = await hub.store.document("t1", lead.guid)
        assert stored is not None
        director_doc.apply(stored.state)
        (next_one,) = await hub.gate.admit_batch(
            DIRECTOR, {82}, [(lead.guid, director_doc.write({"timeline": "now"}), "d")])
        assert isinstance(next_one, Admitted)
        base = next_one.change.base  # judged on what is stored, nothing more
        assert base is not None and base.seq == stored.updated_seq


async def test_a_refusal_by_the_gate_keeps_the_document_as_stored() -> None:
    """The sandbox applied a junior's edit of a manager-only field, then the gate refused it:
    the kept document, and the copy its sandbox worker keeps, never hold it (the next job goes
    with the whole state)."""
    async with running_hub() as server:
        hub = server.hub
        junior = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, "north")
        lead = RecordDoc(LEADS, "l-refused", client_id=91)
        (created,) = await hub.gate.admit_batch(junior, {91}, [(lead.guid, lead.write({
            "tenant_id": "t1", "person_id": "p1", "owner_id": "t1-junior_broker"}), "c")])
        assert isinstance(created, Admitted)
        await hub.committer.commit("t1", [created.change], user_id=junior.user_id,
                                   device_id=None, principal=junior)
        stored = await hub.store.document("t1", lead.guid)
        assert stored is not None
        scratch = RecordDoc(LEADS, "l-refused", client_id=91, state=lead.encode_state())
        (refused,) = await hub.gate.admit_batch(
            junior, {91}, [(lead.guid, scratch.write({"stage": "WON"}), "won")])
        assert isinstance(refused, Refused) and not refused.hostile
        kept = hub.gate.kept("t1", lead.guid)
        assert kept is not None and kept.state == stored.state and kept.seq == stored.updated_seq
        missed = hub.sandbox.stats.kept_missed
        (edit,) = await hub.gate.admit_batch(
            junior, {91}, [(lead.guid, lead.write({"notes": "call back"}), "n")])
        assert isinstance(edit, Admitted) and edit.change.base is not None
        assert edit.change.base.seq == stored.updated_seq
        assert hub.sandbox.stats.kept_missed == missed  # sent with the state, not asked for


async def test_a_gate_over_its_memory_bound_forgets_the_least_recent_documents() -> None:
    async with running_hub() as server:
        hub = server.hub
        gate = Gate(hub.store, hub.sandbox, hub.limits, hot_documents=100, hot_bytes=40_000)
        for n in range(12):
            doc = RecordDoc(PEOPLE, f"p-mem{n}", client_id=95)
            (verdict,) = await gate.admit_batch(DIRECTOR, {95}, [(doc.guid, doc.write({
                "tenant_id": "t1", "full_name": f"Client {n}", "notes": "x" * 2000}), f"m{n}")])
            assert isinstance(verdict, Admitted)
            await hub.committer.commit("t1", [verdict.change], user_id=DIRECTOR.user_id,
                                       device_id=None, principal=DIRECTOR)
        kept = [n for n in range(12) if gate.kept("t1", f"people/p-mem{n}") is not None]
        assert kept and len(kept) < 12 and kept == list(range(12 - len(kept), 12))
