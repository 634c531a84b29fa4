"""Judging passes: batches of one tenant that wait for the gate are judged together, and the
updates a pass holds for one document go to the sandbox as one job (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.identity import Principal, Role
from hub.gate import Admitted, Refused
from hub.store import Committed
from schema import collection
from sync.record import RecordDoc
from tests.hubkit import running_hub

pytestmark = pytest.mark.anyio
PEOPLE, LEADS = collection("people"), collection("leads")
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
JUNIOR = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, "north")


def _counting(sandbox: Any) -> list[list[int]]:
    """Record, per sandbox call, how many updates each of its jobs carried."""
    calls: list[list[int]] = []
    apply_many = sandbox.apply_many

    async def counted(jobs: Any) -> Any:
        calls.append([len(job.updates) for job in jobs])
        return await apply_many(jobs)

    sandbox.apply_many = counted
    return calls


async def test_ten_writers_on_one_record_cost_one_sandbox_job() -> None:
    """Ten devices each push one edit of the same person at once: one pass, one job of ten
    updates, every edit admitted on what the ones before it left, and all of them stored."""
    async with running_hub() as server:
        hub = server.hub
        base = RecordDoc(PEOPLE, "p-meeting", client_id=500)
        create = base.write({"tenant_id": "t1", "full_name": "Meera Iyer"})
        (made,) = await hub.gate.admit_batch(DIRECTOR, {500}, [(base.guid, create, "c")])
        assert isinstance(made, Admitted)
        await hub.committer.commit("t1", [made.change], user_id=DIRECTOR.user_id,
                                   device_id="dev-500")
        writers = []
        for n in range(10):
            doc = RecordDoc(PEOPLE, "p-meeting", client_id=501 + n, state=base.encode_state())
            writers.append((501 + n, doc.write({"tags": [f"tag-{n}"]} if n % 2 else
                                               {"notes": f"note from {n}"})))
        calls = _counting(hub.sandbox)
        verdicts = await asyncio.gather(*(
            hub.gate.admit_batch(DIRECTOR, {client}, [(base.guid, update, f"u{client}")])
            for client, update in writers))
        assert calls == [[10]]
        changes = []
        for (verdict,) in verdicts:
            assert isinstance(verdict, Admitted)
            changes.append(verdict.change)
        results = await hub.committer.commit("t1", changes, user_id=DIRECTOR.user_id,
                                             device_id="dev-many")
        assert all(isinstance(r, Committed) for r in results)
        stored = await hub.store.document("t1", base.guid)
        assert stored is not None
        person = RecordDoc(PEOPLE, "p-meeting", state=stored.state).project()
        assert sorted(person.tags) == sorted(f"tag-{n}" for n in range(1, 10, 2))
        assert person.notes is not None  # a text field: concurrent inserts all stay
        assert sorted(person.notes.split("note from ")[1:]) == [str(n) for n in range(0, 10, 2)]


async def test_a_refusal_inside_a_job_sends_the_updates_after_it_again() -> None:
    """One device's batch: a lead's creation, a stage the junior may not set, and an edit
    that continues the refused one. The job takes all three; the creation is admitted, the
    stage refused, and the edit, judged again without the refused update under it, is
    refused for the gap it leaves, never admitted on a state that holds the refused stage."""
    async with running_hub() as server:
        hub = server.hub
        lead = RecordDoc(LEADS, "l-pass", client_id=77)
        create = lead.write({"tenant_id": "t1", "person_id": "p1",
                             "owner_id": "t1-junior_broker"})
        won = lead.write({"stage": "WON"})
        edit = lead.write({"notes": "after the stage"})
        calls = _counting(hub.sandbox)
        created, stage, after = await hub.gate.admit_batch(
            JUNIOR, {77}, [(lead.guid, create, "c"), (lead.guid, won, "w"),
                           (lead.guid, edit, "e")])
        assert calls[0] == [3]
        assert isinstance(created, Admitted)
        assert isinstance(stage, Refused) and stage.error.code == "lead_stage_forbidden"
        assert isinstance(after, Refused) and not after.hostile
        (result,) = await hub.committer.commit("t1", [created.change], user_id=JUNIOR.user_id,
                                               device_id="dev-77")
        assert isinstance(result, Committed)
        stored = await hub.store.document("t1", lead.guid)
        assert stored is not None
        assert RecordDoc(LEADS, "l-pass", state=stored.state).project().stage == "NEW"
