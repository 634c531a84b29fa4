"""The edge's kept confirmed documents: reused only while storage holds exactly their state."""

from __future__ import annotations

from edge_agent.confirmed_docs import ConfirmedDocs
from schema import collection
from sync.record import RecordDoc

PAGES = collection("canvas_pages")


def _page_updates(n: int) -> tuple[bytes, list[bytes]]:
    """A page's creation and ``n`` narrative edits, as the hub would send them."""
    doc = RecordDoc(PAGES, "pg1", client_id=7)
    first = doc.write({"tenant_id": "t1", "title": "Meeting", "narrative": "start"})
    return first, [doc.write({"narrative": f"<{k}>" + doc.project().narrative})
                   for k in range(n)]


def test_a_kept_document_is_reused_while_storage_holds_its_state() -> None:
    first, edits = _page_updates(3)
    kept = ConfirmedDocs()
    doc = kept.take(PAGES, "pg1", "canvas_pages/pg1", None)
    doc.apply(first, in_order=True)
    state = doc.encode_state()
    kept.keep("canvas_pages/pg1", doc, state)
    again = kept.take(PAGES, "pg1", "canvas_pages/pg1", state)
    assert again is doc  # no rebuild from the stored bytes
    for data in edits:
        again.apply(data, in_order=True)
    fresh = RecordDoc(PAGES, "pg1", state=state)
    for data in edits:
        fresh.apply(data, in_order=True)
    assert again.project() == fresh.project()


def test_storage_that_moved_without_the_cache_means_a_rebuild() -> None:
    """A transaction that rolled back (or another path writing the confirmed state) leaves
    storage at another state: the kept document must not be used on it."""
    first, edits = _page_updates(2)
    kept = ConfirmedDocs()
    doc = RecordDoc(PAGES, "pg1")
    doc.apply(first, in_order=True)
    stored = doc.encode_state()
    doc.apply(edits[0], in_order=True)  # applied, but the save rolled back
    kept.keep("canvas_pages/pg1", doc, doc.encode_state())
    taken = kept.take(PAGES, "pg1", "canvas_pages/pg1", stored)
    assert taken is not doc
    assert taken.encode_state() == RecordDoc(PAGES, "pg1", state=stored).encode_state()
    assert "<0>" not in (taken.project().narrative or "")


def test_the_least_recent_go_first_beyond_the_bound() -> None:
    kept = ConfirmedDocs(documents=2)
    docs, states = {}, {}
    for n in range(3):
        docs[n] = RecordDoc(PAGES, f"pg{n}", client_id=10 + n)
        docs[n].write({"tenant_id": "t1", "title": f"p{n}"})
        states[n] = docs[n].encode_state()
        kept.keep(f"canvas_pages/pg{n}", docs[n], states[n])
    assert kept.take(PAGES, "pg0", "canvas_pages/pg0", states[0]) is not docs[0]  # went
    assert kept.take(PAGES, "pg1", "canvas_pages/pg1", states[1]) is docs[1]
    assert kept.take(PAGES, "pg2", "canvas_pages/pg2", states[2]) is docs[2]
