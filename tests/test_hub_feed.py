"""The live log feed serves every reader exactly what a query of the log would (real
PostgreSQL): the same updates, snapshots and removals, through reassignments, devices' own
rows and a window that drops old rows."""

from __future__ import annotations

import random

import pytest

from core.identity import Principal, Role
from hub.database import Database
from hub.feed import LogFeed
from hub.store import Change, HubStore, LogItem
from schema import collection
from sync.record import RecordDoc
from tests.pg import fresh_database

pytestmark = pytest.mark.anyio
LEADS, PEOPLE = collection("leads"), collection("people")
BROKERS = [("b1", Role.SENIOR_BROKER, "team-a"), ("b2", Role.JUNIOR_BROKER, "team-a"),
           ("b3", Role.SENIOR_BROKER, "team-b"), ("b4", Role.SENIOR_BROKER, "team-a")]
READERS = [Principal("t1", "d1", Role.SALES_DIRECTOR, None, "dev-d1")] + [
    Principal("t1", user, role, team, f"dev-{user}") for user, role, team in BROKERS]


def _as_tuples(items: list[LogItem]) -> list[tuple[int, str, bytes, bool, bool]]:
    return [(i.seq, i.guid, i.data, i.snapshot, i.removed) for i in items]


async def _write(store: HubStore, rng: random.Random, n: int) -> None:
    """One random change committed as a device would: a new lead or person, an edit, or a
    lead reassigned to another broker (and team)."""
    author = rng.choice(READERS)
    client_id = 100 + READERS.index(author)
    leads = [r["record_id"] for r in await store.db.pool.fetch(
        "SELECT record_id FROM hub_documents WHERE collection = 'leads'")]
    if not leads or rng.random() < 0.3:
        coll, record_id = (LEADS, f"lead-{n}") if rng.random() < 0.8 else (PEOPLE, f"p-{n}")
        user, _, team = rng.choice(BROKERS)
        values: dict[str, object] = (
            {"tenant_id": "t1", "owner_id": user, "team_id": team, "person_id": f"p-{n}"}
            if coll is LEADS else {"tenant_id": "t1", "full_name": f"Person {n}"})
        state = None
    else:
        coll, record_id = LEADS, rng.choice(leads)
        stored = await store.document("t1", f"leads/{record_id}")
        assert stored is not None
        state = stored.state
        if rng.random() < 0.3:
            user, _, team = rng.choice(BROKERS)
            values = {"owner_id": user, "team_id": team}
        else:
            values = {"notes": f"call {n}", "budget_min": 1000 * n}
    doc = RecordDoc(coll, record_id, client_id=client_id, state=state)
    update = doc.write(values)
    (result,) = await store.commit("t1", [Change(doc.guid, update, f"u{n}")],
                                   user_id=author.user_id, device_id=author.device_id)
    assert not isinstance(result, Exception), result


@pytest.mark.parametrize("window_rows", [12, 20_000])
async def test_the_feed_reads_what_the_log_query_reads(window_rows: int) -> None:
    async with Database(await fresh_database()) as db:
        await db.pool.execute("INSERT INTO hub_tenants (tenant_id, name) VALUES ('t1', 'T1')")
        store = HubStore(db)
        feed = LogFeed(store, window_rows=window_rows)
        rng = random.Random(7)
        cursors = {p.user_id: 0 for p in READERS}
        checked = 0
        for n in range(150):
            await _write(store, rng, n)
            reader = rng.choice(READERS)
            last, _ = await store.high_water("t1")
            cursor = cursors[reader.user_id]
            limit = rng.choice([3, 50, 1000])
            got = await feed.read(reader, cursor, limit, last=last)
            cursors[reader.user_id] = got[1]
            for other in READERS:  # every reader, from many cursors, against the query
                for start in {0, cursor, max(0, last - rng.randint(1, 12))}:
                    expected, expected_cursor = await store.read_updates(other, start, 10_000,
                                                                         last=last)
                    items, new_cursor = await feed.read(other, start, 10_000, last=last)
                    assert (_as_tuples(items), new_cursor) == (
                        _as_tuples(expected), expected_cursor), (other.user_id, start, last)
                    checked += 1
        kinds = {(i.snapshot, i.removed) for p in READERS
                 for i in (await store.read_updates(p, 0, 10_000))[0]}
        assert checked > 1000
        assert (False, True) in kinds, "no reassignment away from a reader was exercised"
