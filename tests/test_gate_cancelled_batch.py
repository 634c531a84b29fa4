"""A push batch cancelled while the gate judges it (its device's session ended) must leave
nothing the gate keeps ahead of the store: the soak lost acknowledged writes this way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.identity import Principal, Role
from hub.gate import Admitted, AlreadyHeld
from schema import collection
from sync.record import RecordDoc
from tests.hubkit import running_hub

pytestmark = pytest.mark.anyio
LEADS = collection("leads")


async def test_a_batch_cancelled_between_sandbox_rounds_is_judged_again_on_what_is_stored(
) -> None:
    """A device pushes a lead's creation, a stage it may not set and an edit (of its second
    client id, made on the creation) in one batch: the first sandbox job takes all three, the
    gate admits the creation and refuses the stage, so the edit goes to the sandbox again,
    alone; the session ends while it waits. Pushed again,
    the creation must be judged and committed, not answered as already held (an ACK with no
    commit)."""
    async with running_hub() as server:
        hub = server.hub
        junior = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, "north")
        lead = RecordDoc(LEADS, "l-cancelled", client_id=71)
        create = lead.write({"tenant_id": "t1", "person_id": "p1",
                             "owner_id": "t1-junior_broker"})
        other = RecordDoc(LEADS, "l-cancelled", client_id=72, state=lead.encode_state())
        won = lead.write({"stage": "WON"})
        edit = other.write({"notes": "after the creation"})
        sandbox = hub.gate._sandbox
        apply_many = sandbox.apply_many
        second_round = asyncio.Event()
        calls = 0

        async def slow_second_round(jobs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:  # the edit, alone: the session ends meanwhile
                second_round.set()
                await asyncio.Event().wait()
            return await apply_many(jobs)

        sandbox.apply_many = slow_second_round  # type: ignore[method-assign]
        batch = asyncio.create_task(hub.gate.admit_batch(
            junior, {71, 72}, [(lead.guid, create, "c"), (lead.guid, won, "w"),
                           (lead.guid, edit, "e")]))
        await asyncio.wait_for(second_round.wait(), 30)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        sandbox.apply_many = apply_many  # type: ignore[method-assign]
        assert await hub.store.document("t1", lead.guid) is None  # nothing was committed
        (again,) = await hub.gate.admit_batch(junior, {71}, [(lead.guid, create, "c2")])
        assert not isinstance(again, AlreadyHeld)
        assert isinstance(again, Admitted)
