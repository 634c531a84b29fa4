"""The surrogate-pair property through the hub itself: the gate (validator, sandbox, judging,
its kept documents) and the commit on PostgreSQL. Several writers edit text holding astral
characters at every UTF-16 offset; the hub either refuses an edit or stores a document that
re-encodes to itself, equals its projection row and equals every writer's replica."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings

from core.identity import Principal, Role
from core.ids import new_id
from hub.gate import Admitted, Refused
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import Committed
from schema import to_row
from sync.record import RecordDoc
from tests.pg import fresh_database
from tests.test_text_surrogates import PEOPLE, WRITERS, _assert_sound, _edit, astral, rounds

TENANT = "t1"


@pytest.fixture(scope="module")
def hub() -> Iterator[tuple[asyncio.Runner, Hub]]:
    """One hub for every example (each example edits a record of its own)."""
    runner = asyncio.Runner()
    url = runner.run(fresh_database())
    # a generous sandbox deadline: a timeout under a loaded machine is not what is tested here
    service = Hub(HubSettings(database_url=url, sandbox_workers=1, sandbox_timeout_s=60))
    runner.run(service.__aenter__())
    try:
        runner.run(service.accounts.ensure_tenant(TENANT, "T1"))
        yield runner, service
    finally:
        runner.run(service.__aexit__(None, None, None))
        runner.close()


def _principal(client: int) -> Principal:
    return Principal(TENANT, "u-director", Role.SALES_DIRECTOR, "north", f"device-{client}")


async def _push(hub: Hub, guid: str, client: int, data: bytes) -> str | None:
    """Push one update as the device writing with ``client``; its refusal code, or None."""
    principal = _principal(client)
    (verdict,) = await hub.gate.admit_batch(principal, {client}, [(guid, data, new_id())])
    if isinstance(verdict, Refused):
        return verdict.error.code
    assert isinstance(verdict, Admitted), verdict
    (result,) = await hub.committer.commit(TENANT, [verdict.change], user_id=principal.user_id,
                                           device_id=principal.device_id, principal=principal)
    assert isinstance(result, Committed), result
    return None


async def _stored(hub: Hub, record_id: str) -> tuple[RecordDoc, dict[str, Any]]:
    stored = await hub.store.document(TENANT, f"people/{record_id}")
    assert stored is not None
    row = await hub.db.pool.fetchrow(
        "SELECT notes, full_name FROM crm_people WHERE tenant_id = $1 AND id = $2",
        TENANT, record_id)
    return RecordDoc(PEOPLE, record_id, state=stored.state), dict(row)


async def _run(hub: Hub, seed_text: str, steps: list[tuple[int, bool, tuple[Any, ...]]]) -> None:
    record_id = new_id()
    guid = f"people/{record_id}"
    author = RecordDoc(PEOPLE, record_id, client_id=10)
    seed = author.write({"tenant_id": TENANT, "full_name": "Zara Khan", "notes": seed_text})
    assert await _push(hub, guid, 10, seed) is None
    writers = [RecordDoc(PEOPLE, record_id, client_id=c, state=author.encode_state())
               for c in WRITERS]
    for who, pull_first, operation in steps:
        writer = writers[who]
        stored, _ = await _stored(hub, record_id)
        if pull_first:
            writer.apply(stored.diff(writer.state_vector()))
        data, splits = _edit(writer, operation)
        refusal = await _push(hub, guid, writer.client_id, data)
        if refusal is not None:
            assert splits and refusal == "surrogate_split", refusal
            continue
        stored, row = await _stored(hub, record_id)
        if splits:  # accepted only when the pair was already deleted whole at the hub
            writer.apply(stored.diff(writer.state_vector()))
        else:
            writer.apply(data)
        _assert_sound(stored)
        assert row == {k: to_row(stored.project())[k] for k in row}
    stored, _ = await _stored(hub, record_id)
    for writer in writers:
        writer.apply(stored.diff(writer.state_vector()))
        _assert_sound(writer)
        assert writer.content() == stored.content()
        assert writer.state_vector() == stored.state_vector()


@settings(max_examples=25)
@given(seed_text=astral, steps=rounds)
def test_the_hub_refuses_surrogate_splits_or_stays_sound(
    hub: tuple[asyncio.Runner, Hub], seed_text: str,
    steps: list[tuple[int, bool, tuple[Any, ...]]],
) -> None:
    runner, service = hub
    runner.run(_run(service, seed_text, steps))
