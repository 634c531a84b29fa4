"""Group commit: push batches that wait for a tenant's commit go into one transaction together,
each keeping its own results, receipts and refusals (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.errors import PermissionDenied, RecordInvalid
from core.identity import Principal, Role
from hub import store as store_module
from hub.database import Database
from hub.gate import Admitted, Gate
from hub.service import Hub
from hub.store import Change, Committed, HubStore, RefusalReceipt, Unstorable
from schema import collection
from sync.record import RecordDoc
from tests.hubkit import running_hub

pytestmark = pytest.mark.anyio
PEOPLE, LEADS = collection("people"), collection("leads")


def _create(client_id: int, record_id: str, **values: Any) -> tuple[RecordDoc, Change]:
    doc = RecordDoc(PEOPLE, record_id, client_id=client_id)
    update = doc.write({"tenant_id": "t1", "full_name": "Meera Iyer", **values})
    return doc, Change(doc.guid, update, f"u-{client_id}-{record_id}")


async def _landed(hub: Hub, record_id: str) -> tuple[int, tuple[Any, Any], dict[str, Any]]:
    """A person as stored: its last sequence, (city, phone) of its merged document, and the
    same two columns of its projection row."""
    stored = await hub.store.document("t1", f"people/{record_id}")
    assert stored is not None
    merged = RecordDoc(PEOPLE, record_id, state=stored.state).project()
    row = await hub.db.pool.fetchrow(
        "SELECT city, primary_phone FROM crm_people WHERE tenant_id = 't1' AND id = $1",
        record_id)
    return stored.updated_seq, (merged.city, merged.primary_phone), dict(row)


async def test_waiting_batches_share_one_transaction_and_keep_their_own_results() -> None:
    async with running_hub() as server:
        hub = server.hub
        transactions: list[int] = []
        commit_groups = hub.store.commit_groups

        async def counted(tenant_id: str, groups: Any) -> Any:
            transactions.append(len(groups))
            return await commit_groups(tenant_id, groups)

        hub.store.commit_groups = counted  # type: ignore[method-assign]
        _, a = _create(11, "p-a")
        _, b = _create(12, "p-b", city="Pune")
        _, bad = _create(13, "p-bad", tenant_id="t2")  # claims another tenant: refused alone
        _, c = _create(13, "p-c")
        results = await asyncio.gather(
            hub.committer.commit("t1", [a], user_id="t1-admin", device_id="dev-a"),
            hub.committer.commit("t1", [b], user_id="t1-admin", device_id="dev-b"),
            hub.committer.commit("t1", [bad, c], user_id="t1-admin", device_id="dev-c"),
        )
        assert transactions == [3]
        (ra,), (rb,), (rbad, rc) = results
        assert isinstance(ra, Committed) and isinstance(rb, Committed)
        assert isinstance(rc, Committed)
        assert isinstance(rbad, RecordInvalid)
        assert sorted([ra.seq, rb.seq, rc.seq]) == [ra.seq, rb.seq, rc.seq]
        assert (await hub.store.document("t1", "people/p-bad")) is None
        assert rb.record is not None and rb.record.city == "Pune"
        receipts = await hub.store.receipts("t1", "dev-c", [bad.update_id or "", c.update_id or ""])
        assert receipts == {c.update_id: rc.seq, bad.update_id: RefusalReceipt(
            bad.guid, "invalid_record", "people/p-bad: tenant_id may not be 't2'")}

        # a retry of a committed batch, merged with a new one, gets its original sequence back
        _, d = _create(14, "p-d")
        again, fresh = await asyncio.gather(
            hub.committer.commit("t1", [a], user_id="t1-admin", device_id="dev-a"),
            hub.committer.commit("t1", [d], user_id="t1-admin", device_id="dev-d"),
        )
        assert transactions == [3, 2]
        assert isinstance(again[0], Committed) and again[0].duplicate and again[0].seq == ra.seq
        assert isinstance(fresh[0], Committed) and fresh[0].seq > rc.seq


async def test_two_devices_editing_one_record_in_one_transaction_both_land() -> None:
    async with running_hub() as server:
        hub = server.hub
        doc, create = _create(21, "p-shared")
        await hub.committer.commit("t1", [create], user_id="t1-admin", device_id="dev-1")
        other = RecordDoc(PEOPLE, "p-shared", client_id=22, state=doc.encode_state())
        city = Change(doc.guid, doc.write({"city": "Goa"}), "u-city")
        phone = Change(other.guid, other.write({"primary_phone": "+91 98000 00000"}), "u-phone")
        first, second = await asyncio.gather(
            hub.committer.commit("t1", [city], user_id="t1-admin", device_id="dev-1"),
            hub.committer.commit("t1", [phone], user_id="t1-admin", device_id="dev-2"),
        )
        assert isinstance(first[0], Committed) and isinstance(second[0], Committed)
        updated_seq, merged, row = await _landed(hub, "p-shared")
        assert updated_seq == second[0].seq
        assert merged == ("Goa", "+91 98000 00000")
        assert row == {"city": "Goa", "primary_phone": "+91 98000 00000"}


async def test_changes_judged_on_one_state_both_land_when_committed_one_after_the_other() -> None:
    """The gate's result is taken only when the document is still at the state it judged: the
    second device's change was judged (by another hub process's gate) before the first one
    committed, so it is applied again."""
    async with running_hub() as server:
        hub = server.hub
        director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
        doc, create = _create(31, "p-race")
        await hub.committer.commit("t1", [create], user_id="t1-admin", device_id=None)
        a = RecordDoc(PEOPLE, "p-race", client_id=32, state=doc.encode_state())
        b = RecordDoc(PEOPLE, "p-race", client_id=33, state=doc.encode_state())
        (va,) = await hub.gate.admit_batch(director, {32}, [(a.guid, a.write({"city": "Goa"}),
                                                              "u-a")])
        other = Gate(hub.store, hub.sandbox, hub.limits, hot_documents=16)
        (vb,) = await other.admit_batch(
            director, {33}, [(b.guid, b.write({"primary_phone": "+91 98000 00001"}), "u-b")])
        assert isinstance(va, Admitted) and isinstance(vb, Admitted)
        assert va.change.base is not None and vb.change.base is not None
        assert va.change.base.seq == vb.change.base.seq == 1  # both on the same stored state
        for verdict in (va, vb):
            (result,) = await hub.committer.commit("t1", [verdict.change],
                                                   user_id=director.user_id, device_id=None,
                                                   principal=director)
            assert isinstance(result, Committed)
        _, merged, row = await _landed(hub, "p-race")
        assert merged == ("Goa", "+91 98000 00001")
        assert row == {"city": "Goa", "primary_phone": "+91 98000 00001"}


async def test_a_change_judged_before_a_reassignment_is_judged_again_when_it_commits() -> None:
    """A junior's edit passed the gate while the lead was theirs; a director reassigned it
    before the edit committed: the commit applies it to the new state and judges it again."""
    async with running_hub() as server:
        hub = server.hub
        junior = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, "north")
        director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
        lead = RecordDoc(LEADS, "l-race", client_id=41)
        create = lead.write({"tenant_id": "t1", "person_id": "p1",
                             "owner_id": "t1-junior_broker"})
        (created,) = await hub.gate.admit_batch(junior, {41}, [(lead.guid, create, "c")])
        assert isinstance(created, Admitted)
        await hub.committer.commit("t1", [created.change], user_id=junior.user_id,
                                   device_id=None, principal=junior)
        (edit,) = await hub.gate.admit_batch(
            junior, {41}, [(lead.guid, lead.write({"notes": "still mine"}), "e")])
        assert isinstance(edit, Admitted)
        await hub.writer.write(director, "leads", "l-race", {"owner_id": "t1-junior2"},
                               create=False)
        (result,) = await hub.committer.commit("t1", [edit.change], user_id=junior.user_id,
                                               device_id=None, principal=junior)
        assert isinstance(result, PermissionDenied) and result.code == "not_owner"
        row = await hub.db.pool.fetchrow(
            "SELECT owner_id, notes FROM crm_leads WHERE tenant_id = 't1' AND id = 'l-race'")
        assert dict(row) == {"owner_id": "t1-junior2", "notes": ""}
        audit = await hub.db.pool.fetchval(
            "SELECT detail->>'reason' FROM hub_audit WHERE guid = $1 AND action = 'refused'",
            lead.guid)
        assert audit == "not_owner"


async def test_a_batch_postgresql_refuses_fails_alone_not_the_batches_beside_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A change PostgreSQL cannot store (here: a statement that fails for one marked change)
    costs only that change: the other batches in the transaction, and the other changes of its
    own batch, commit; it is refused for good."""
    async with running_hub() as server:
        hub = server.hub
        real = store_module.write_changes

        async def failing(conn: Any, tenant_id: str, pending: Any, taken: Any = None) -> Any:
            if any((p.change.update_id or "").startswith("poison") for p in pending):
                await conn.execute("SELECT 1 / 0")  # a real PostgreSQL error, mid-transaction
            return await real(conn, tenant_id, pending, taken)

        monkeypatch.setattr(store_module, "write_changes", failing)
        _, a = _create(51, "p-a")
        _, poison = _create(52, "p-poison")
        poison = Change(poison.guid, poison.update, "poison-1")
        _, c = _create(52, "p-c")
        _, b = _create(53, "p-b")
        results = await asyncio.gather(
            hub.committer.commit("t1", [a], user_id="t1-admin", device_id="dev-a"),
            hub.committer.commit("t1", [poison, c], user_id="t1-admin", device_id="dev-p"),
            hub.committer.commit("t1", [b], user_id="t1-admin", device_id="dev-b"),
        )
        (ra,), (rpoison, rc), (rb,) = results
        assert isinstance(ra, Committed) and isinstance(rb, Committed)
        assert isinstance(rc, Committed)
        assert isinstance(rpoison, Unstorable)
        for record_id in ("p-a", "p-b", "p-c"):
            assert await hub.store.document("t1", f"people/{record_id}") is not None
        assert await hub.store.document("t1", "people/p-poison") is None
        seqs = await hub.db.pool.fetch("SELECT seq FROM hub_updates ORDER BY seq")
        assert [r["seq"] for r in seqs] == sorted([ra.seq, rb.seq, rc.seq])
        receipts = await hub.store.receipts("t1", "dev-p", ["poison-1", c.update_id or ""])
        assert receipts[c.update_id or ""] == rc.seq
        refused = receipts["poison-1"]
        assert isinstance(refused, RefusalReceipt) and refused.reason == "unstorable"
        # the same id again: the same refusal, without touching the database's refusal
        (again,) = await hub.committer.commit("t1", [poison], user_id="t1-admin",
                                              device_id="dev-p")
        assert isinstance(again, RecordInvalid) and again.code == "unstorable"


async def test_two_hubs_given_one_update_id_at_once_commit_it_once() -> None:
    """Two hubs on one database commit the same device's update id at the same moment (a
    device that reconnected to the other hub and sent again): one log row, and both answer its
    sequence; a refusal recorded for an id at the moment it commits never stands beside it."""
    async with running_hub() as server, Database(server.hub.database_url) as other_db:
        stores = (server.hub.store, HubStore(other_db))
        for n in range(8):
            _, change = _create(60 + n, f"p-twice-{n}")
            one, two = await asyncio.gather(*(
                store.commit("t1", [change], user_id="t1-admin", device_id="dev-r")
                for store in (stores if n % 2 else stores[::-1])))
            assert isinstance(one[0], Committed) and isinstance(two[0], Committed), (one, two)
            assert one[0].seq == two[0].seq and one[0].duplicate != two[0].duplicate
        assert await server.hub.db.pool.fetchval(
            "SELECT count(*) FROM hub_updates WHERE device_id = 'dev-r'") == 8

        refusal = RefusalReceipt("people/p-race", "forbidden", "not yours")
        for n in range(8):
            _, change = _create(80 + n, f"p-race-{n}")
            uid = change.update_id or ""
            committed, held = await asyncio.gather(
                stores[n % 2].commit("t1", [change], user_id="t1-admin", device_id="dev-s"),
                stores[1 - n % 2].record_refusals("t1", "dev-s", [(uid, refusal)]))
            outcome = committed[0]
            if isinstance(outcome, Committed):
                assert held == {uid: outcome.seq}
            else:
                assert held == {uid: refusal} and getattr(outcome, "code", "") == "forbidden"
            assert await stores[0].receipts("t1", "dev-s", [uid]) == held


async def _stored_rows(hub: Hub, guids: list[str]) -> list[tuple[Any, ...]]:
    """Each document's scope columns and its projection row, as PostgreSQL holds them."""
    out = []
    for guid in guids:
        coll_name, record_id = guid.split("/", 1)
        doc = await hub.db.pool.fetchrow(
            "SELECT owner_id, team_id, readers, prev_readers, created_seq = updated_seq AS new "
            "FROM hub_documents WHERE tenant_id = 't1' AND guid = $1", guid)
        row = await hub.db.pool.fetchrow(
            f"SELECT * FROM {collection(coll_name).table} WHERE tenant_id = 't1' AND id = $1",
            record_id)
        assert doc is not None and row is not None
        out.append((tuple(doc), {k: v for k, v in dict(row).items() if k != "id"}))
    return out


async def test_a_transaction_of_many_documents_stores_what_one_at_a_time_stores() -> None:
    """From `UNNEST_FROM_ROWS` documents on, a transaction writes documents and projection rows
    as column arrays: lists (readers, JSON fields), dates and numbers land as they do when each
    document commits alone."""
    pages, leads = collection("canvas_pages"), collection("leads")
    many = store_module.UNNEST_FROM_ROWS + 1

    def changes(prefix: str, client_id: int) -> list[Change]:
        out = []
        for n in range(many):
            page = RecordDoc(pages, f"{prefix}-page-{n}", client_id=client_id)
            out.append(Change(page.guid, page.write({
                "tenant_id": "t1", "owner_id": "t1-admin", "title": f"Page {n}",
                "sharing": "private", "editors": [f"u-{n}", "u-x"], "viewers": ["u-v"]})))
            lead = RecordDoc(leads, f"{prefix}-lead-{n}", client_id=client_id)
            out.append(Change(lead.guid, lead.write({
                "tenant_id": "t1", "owner_id": "t1-admin", "person_id": f"p-{n}",
                "tags": ["sea view", f"tag {n}", 'quote " and \\ slash'],
                "budget_min": 45_000_000.5, "last_qd": 70 + n})))
        return out

    async with running_hub() as server:
        hub = server.hub
        one_by_one = changes("single", 31)
        for change in one_by_one:
            (result,) = await hub.store.commit("t1", [change], user_id="t1-admin", device_id=None)
            assert isinstance(result, Committed)
        together = changes("group", 32)
        results = await hub.store.commit("t1", together, user_id="t1-admin", device_id=None)
        assert all(isinstance(r, Committed) for r in results)
        alone = await _stored_rows(hub, [c.guid for c in one_by_one])
        grouped = await _stored_rows(hub, [c.guid for c in together])
        assert grouped == alone
        page_doc, _ = grouped[0]
        assert set(page_doc[2]) == {"t1-admin", "u-0", "u-x", "u-v"} and page_doc[3] is None
        _, lead_row = grouped[1]
        assert sorted(lead_row["tags"]) == ['quote " and \\ slash', "sea view", "tag 0"]
        assert lead_row["budget_min"] == 45_000_000.5 and lead_row["last_qd"] == 70
