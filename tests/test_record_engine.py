"""The record engine: local changes become updates; remote updates apply safely."""

from __future__ import annotations

import pytest

from core.errors import FrameTooLarge, MalformedFrame, PendingUpdates, RecordInvalid, StorageError
from schema import collection
from sync.record import RecordDoc

LEADS = collection("leads")
PEOPLE = collection("people")


def _person(client_id: int = 1) -> RecordDoc:
    doc = RecordDoc(PEOPLE, "p1", client_id=client_id)
    doc.write({"tenant_id": "t1", "full_name": "Zara Khan", "city": "Dubai"})
    return doc


def test_write_produces_update_that_recreates_record_elsewhere() -> None:
    doc = _person()
    other = RecordDoc(PEOPLE, "p1", client_id=2)
    other.apply(doc.encode_state())
    assert other.project().full_name == "Zara Khan"
    assert other.project().city == "Dubai"
    assert doc.guid == "people/p1"


def test_invalid_change_is_refused_and_document_untouched() -> None:
    doc = _person()
    before = doc.encode_state()
    with pytest.raises(RecordInvalid, match="full_name"):
        doc.write({"full_name": ""})
    with pytest.raises(RecordInvalid, match="no field"):
        doc.write({"hacker": 1})
    assert doc.encode_state() == before


def test_text_edits_are_minimal_so_concurrent_edits_both_survive() -> None:
    a = _person(1)
    a.write({"notes": "Wants sea view. Budget flexible."})
    b = RecordDoc(PEOPLE, "p1", client_id=2, state=a.encode_state())
    ua = a.write({"notes": "Wants sea view, high floor. Budget flexible."})
    ub = b.write({"notes": "Wants sea view. Budget flexible up to 12 Cr."})
    a.apply(ub)
    b.apply(ua)
    assert a.content()["notes"] == b.content()["notes"]
    assert "high floor" in a.content()["notes"] and "12 Cr" in a.content()["notes"]


def test_concurrent_register_writes_resolve_identically() -> None:
    a = _person(1)
    b = RecordDoc(PEOPLE, "p1", client_id=2, state=a.encode_state())
    ua = a.write({"city": "Mumbai"})
    ub = b.write({"city": "London"})
    a.apply(ub)
    b.apply(ua)
    assert a.project().city == b.project().city


def test_delete_is_a_tombstone_and_late_edits_still_merge() -> None:
    a = _person(1)
    b = RecordDoc(PEOPLE, "p1", client_id=2, state=a.encode_state())
    ua = a.delete()
    ub = b.write({"city": "Pune"})
    a.apply(ub)
    b.apply(ua)
    assert a.project().deleted and b.project().deleted
    assert a.project().city == "Pune"


def test_apply_checked_refuses_update_that_does_not_validate() -> None:
    good = RecordDoc(LEADS, "l1", client_id=1)
    good.write({"tenant_id": "t1", "person_id": "p1"})
    rogue = RecordDoc(LEADS, "l1", client_id=2, state=good.encode_state())
    # A rogue replica bypasses write() validation by editing the root map directly.
    rogue._fields["stage"] = "TELEPORTED"
    bad_update = rogue.diff(good.state_vector())
    before = good.encode_state()
    with pytest.raises(RecordInvalid, match="stage"):
        good.apply_checked(bad_update)
    assert good.encode_state() == before


def test_oversized_and_garbage_updates_are_typed_errors() -> None:
    doc = _person()
    with pytest.raises(FrameTooLarge):
        doc.apply(b"\x00" * 100, max_bytes=10)
    with pytest.raises(MalformedFrame):
        doc.apply(b"\xff\xff\xff")


def test_pending_update_blocks_compaction_until_predecessor_arrives() -> None:
    a = RecordDoc(PEOPLE, "p1", client_id=1)
    created = a.write({"tenant_id": "t1", "full_name": "Zara Khan"})
    first = a.write({"city": "Goa"})
    second = a.write({"city": "Delhi"})
    b = RecordDoc(PEOPLE, "p1", client_id=2)
    b.apply(created)
    b.apply(second)
    assert b.has_pending()
    with pytest.raises(PendingUpdates):
        b.compact()
    b.apply(first)
    assert not b.has_pending()
    assert b.project().city == "Delhi"
    assert RecordDoc(PEOPLE, "p1", state=b.compact()).project().city == "Delhi"


def test_in_order_fast_path_falls_back_when_an_update_arrives_early() -> None:
    """The log-order fast path trusts order but checks it: an update whose predecessor is
    missing must be held (never shown, never lost), exactly as on the decoding path."""
    a = RecordDoc(PEOPLE, "p1", client_id=1)
    created = a.write({"tenant_id": "t1", "full_name": "Zara Khan", "notes": "Sea view"})
    first = a.write({"city": "Goa", "notes": "Sea view, high floor"})
    second = a.write({"city": "Delhi", "tags": ["hni"]})
    b = RecordDoc(PEOPLE, "p1", client_id=2)
    b.apply(created, in_order=True)
    b.apply(second, in_order=True)  # out of order: detected natively, then held
    assert b.has_pending()
    assert b.project().city is None and b.project().notes == "Sea view"
    b.apply(first, in_order=True)
    assert not b.has_pending()
    assert b.content() == a.content()
    c = RecordDoc(PEOPLE, "p1", client_id=3)
    for update in (created, first, second):
        c.apply(update, in_order=True)
    assert c.encode_state() == a.encode_state() and not c.has_pending()


def test_content_is_a_copy_callers_cannot_corrupt() -> None:
    doc = _person()
    doc.write({"tags": ["hni"]})
    doc.content()["tags"].append("mutated")
    doc.project().tags.append("mutated")
    assert doc.content()["tags"] == ["hni"] and doc.project().tags == ["hni"]


def test_in_order_fast_path_holds_an_update_whose_origin_is_missing() -> None:
    a = RecordDoc(PEOPLE, "p1", client_id=1)
    created = a.write({"tenant_id": "t1", "full_name": "Zara Khan", "city": "Goa"})
    b = RecordDoc(PEOPLE, "p1", client_id=2, state=a.encode_state())
    moved = b.write({"city": "Delhi"})  # client 2 from clock 0, origin on client 1's item
    c = RecordDoc(PEOPLE, "p1", client_id=3)
    c.apply(moved, in_order=True)
    assert c.has_pending() and c.is_empty
    c.apply(created, in_order=True)
    assert not c.has_pending() and c.content() == b.content()


def test_a_log_run_applies_natively_and_refuses_one_that_does_not_continue_the_document() -> None:
    """`apply_log` (a checkpoint's tail) takes a run of updates in log order; a run that skips
    one (an incremental update whose predecessor is missing) is refused, not half-applied in
    silence."""
    source = RecordDoc(PEOPLE, "p1", client_id=7)
    first = source.write({"tenant_id": "t1", "full_name": "Meera Iyer"})
    second = source.write({"city": "Pune"})
    whole = RecordDoc(PEOPLE, "p1")
    whole.apply_log([first, second])
    assert whole.content() == source.content()
    with pytest.raises(StorageError):
        RecordDoc(PEOPLE, "p1").apply_log([second])
