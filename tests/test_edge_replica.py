"""The edge replica: local-first writes, durability, encryption at rest, refusal rollback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.errors import RecordInvalid, StorageError
from edge_agent.crypto import Sealer
from edge_agent.replica import Replica
from schema import collection
from sync.record import RecordDoc

pytestmark = pytest.mark.anyio
SECRET = b"k" * 32
PERSON = {"tenant_id": "t1", "owner_id": "u1", "full_name": "Zara Khan", "city": "Dubai"}


async def test_local_write_is_queryable_and_queued_without_any_network(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        record = await replica.write("people", "p1", PERSON)
        assert record.full_name == "Zara Khan"
        rows = await replica.query("SELECT full_name, city FROM temp.crm_people")
        assert rows == [{"full_name": "Zara Khan", "city": "Dubai"}]
        outbox = await replica.outbox(10)
        assert [e.guid for e in outbox] == ["people/p1"]
        with pytest.raises(RecordInvalid):
            await replica.write("people", "p1", {"full_name": ""})
        assert await replica.pending_count() == 1


async def test_replica_survives_restart_and_rebuilds_projection(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.write("people", "p1", PERSON)
        await replica.write("people", "p1", {"city": "Pune"})
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        rows = await replica.query("SELECT city FROM temp.crm_people WHERE id = 'p1'")
        assert rows == [{"city": "Pune"}]
        assert await replica.pending_count() == 2


async def test_copied_file_reveals_no_client_name_and_needs_the_key(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.write("people", "p1", {**PERSON, "notes": "Prefers a sea view"})
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"Zara" not in raw and b"sea view" not in raw
    with pytest.raises(StorageError, match="does not decrypt"):
        async with Replica(tmp_path / "r.db", Sealer(b"x" * 32), client_id=11):
            pass


async def test_refusal_rolls_back_only_the_refused_change(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.write("people", "p1", PERSON)
        first = (await replica.outbox(10))[0]
        await replica.acknowledge([first.update_id])
        await replica.write("people", "p1", {"segment": "whale"})      # will be refused
        await replica.write("people", "p1", {"city": "London", "notes": "Call on Friday"})
        await replica.write("people", "p2", {**PERSON, "full_name": "Dev Shah"})
        refused = (await replica.outbox(10))[0]
        await replica.refuse(refused.update_id, "people/p1", "manager_only_field", "nope")
        person = replica.record("people", "p1")
        assert person.segment is None
        assert person.city == "London" and person.notes == "Call on Friday"
        assert replica.record("people", "p2").full_name == "Dev Shah"
        remaining = await replica.outbox(10)
        assert refused.update_id not in {e.update_id for e in remaining}
        assert len(remaining) == 2
        assert (await replica.refusals())[0]["reason"] == "manager_only_field"


async def _cancel_after(coro: object, yields: int) -> None:
    task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
    for _ in range(yields):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cancelled_writes_and_pulls_leave_memory_equal_to_disk(tmp_path: Path) -> None:
    """Cancellation can land anywhere, COMMIT included (the CI failure of session 1): memory
    must still equal what is committed, the outbox must explain the state, and the next
    transaction must start cleanly."""
    remote = RecordDoc(collection("people"), "p1", client_id=99)
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.write("people", "p1", PERSON)
        await replica.apply_pulled([("people/p1", remote.write(PERSON), False)], 1)
        for step in range(30):
            await _cancel_after(replica.write("people", "p1", {"city": f"City {step}"}), step)
            update = remote.write({"notes": f"remote {step}"})
            await _cancel_after(replica.apply_pulled([("people/p1", update, False)], step + 1),
                                step)
            await replica.write("people", "p2", {**PERSON, "full_name": f"Next {step}"})
        in_memory = replica.record("people", "p1")
        outbox = await replica.outbox(1000)
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as reopened:
        on_disk = reopened.record("people", "p1")
        assert on_disk == in_memory
        rows = await reopened.query("SELECT city FROM temp.crm_people WHERE id = 'p1'")
        assert rows == [{"city": on_disk.city}]
    local_only = RecordDoc(collection("people"), "p1", state=remote.encode_state())
    for entry in outbox:
        if entry.guid == "people/p1":
            local_only.apply(entry.data)
    assert local_only.content()["city"] == in_memory.city  # remote never sets the city


async def test_concurrent_local_writes_and_pulls_take_turns(tmp_path: Path) -> None:
    """A broker typing while a pull batch lands: one SQLite connection, no nested BEGIN."""
    remote = RecordDoc(collection("people"), "p1", client_id=99)
    first = remote.write(PERSON)
    pulls = [remote.write({"notes": f"remote {i}"}) for i in range(20)]
    async with Replica(tmp_path / "r.db", Sealer(SECRET), client_id=11) as replica:
        await replica.apply_pulled([("people/p1", first, False)], 1)
        await asyncio.gather(
            *(replica.write("people", f"p{i + 2}", {**PERSON, "full_name": f"P {i}"})
              for i in range(20)),
            *(replica.apply_pulled([("people/p1", u, False)], i + 2)
              for i, u in enumerate(pulls)))
        assert replica.record("people", "p1").notes == "remote 19"
        assert await replica.pending_count() == 20


_WRITER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from edge_agent.crypto import Sealer
    from edge_agent.replica import Replica

    async def main():
        async with Replica(Path(sys.argv[1]), Sealer(b"k" * 32), client_id=11) as r:
            i = 0
            while True:
                await r.write("people", f"p{i}", {"tenant_id": "t1", "full_name": f"P {i}"})
                print(i, flush=True)
                i += 1

    asyncio.run(main())
""")


async def test_kill_9_during_writes_loses_no_returned_write(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    acknowledged = -1
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    async with Replica(db, Sealer(SECRET), client_id=11) as replica:
        ids = {r["id"] for r in await replica.query("SELECT id FROM temp.crm_people")}
        assert {f"p{i}" for i in range(acknowledged + 1)} <= ids
        assert await replica.pending_count() == len(ids)
