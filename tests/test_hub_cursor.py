"""The concurrent-commit cursor case: a reader following the log never skips an update, even
when concurrent transactions commit out of order."""

from __future__ import annotations

import asyncio
import random

import pytest

from core.identity import Principal, Role
from hub.database import Database
from hub.store import HubStore, LocalWriter
from schema import collection
from sync.record import RecordDoc
from tests.pg import fresh_database

PEOPLE = collection("people")

pytestmark = pytest.mark.anyio

WRITERS = 12
WRITES_EACH = 15


async def test_reader_never_skips_an_update_under_many_concurrent_writers() -> None:
    async with Database(await fresh_database(), max_size=WRITERS + 4) as db:
        await db.pool.execute("INSERT INTO hub_tenants (tenant_id, name) VALUES ('t1', 'T1')")
        store = HubStore(db)
        director = Principal("t1", "d1", Role.SALES_DIRECTOR)
        done = asyncio.Event()
        replicas: dict[str, RecordDoc] = {}

        async def writer(n: int) -> None:
            rng = random.Random(n)
            local = LocalWriter(store, client_id=1000 + n)
            for i in range(WRITES_EACH):
                values = {"tenant_id": "t1", "full_name": f"Person {n} {i}"}
                await local.write(director, "people", f"w{n}-{i % 3}", values, create=i < 3)
                await asyncio.sleep(rng.random() / 200)

        async def reader() -> int:
            cursor = 0
            while True:
                finished = done.is_set()
                items, cursor = await store.read_updates(director, cursor, limit=7)
                for item in items:
                    rid = item.guid.split("/")[1]
                    replicas.setdefault(rid, RecordDoc(PEOPLE, rid)).apply(item.data)
                if finished and not items:
                    return cursor
                await asyncio.sleep(0)

        reading = asyncio.create_task(reader())
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        done.set()
        final_cursor = await reading
        last, _ = await store.high_water("t1")
        assert final_cursor == last == WRITERS * WRITES_EACH
        rows = await db.pool.fetch("SELECT record_id, state FROM hub_documents")
        assert len(rows) == WRITERS * 3
        for row in rows:
            replica = replicas[row["record_id"]]
            assert not replica.has_pending(), f"{row['record_id']}: an update was skipped"
            hub_doc = RecordDoc(PEOPLE, row["record_id"], state=bytes(row["state"]))
            assert replica.content() == hub_doc.content()
