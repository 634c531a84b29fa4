"""A Yjs client that fell behind gets the page's committed updates as one merged frame."""

from __future__ import annotations

from hub.yjs_endpoint import _merged
from schema import collection
from sync.record import RecordDoc

PAGES = collection("canvas_pages")


def _edits(n: int) -> list[bytes]:
    doc = RecordDoc(PAGES, "pg", client_id=3)
    out = [doc.write({"tenant_id": "t1", "title": "Meeting", "narrative": ""})]
    out += [doc.write({"narrative": f"<{k}>" + (doc.project().narrative or "")})
            for k in range(n)]
    return out


def test_updates_read_together_go_as_one_that_applies_as_all_of_them() -> None:
    updates = _edits(6)
    (merged,) = _merged(updates, 1 << 20)
    one, each = RecordDoc(PAGES, "pg"), RecordDoc(PAGES, "pg")
    one.apply(merged, in_order=True)
    for update in updates:
        each.apply(update, in_order=True)
    assert one.project() == each.project()
    assert one.project().narrative == "".join(f"<{k}>" for k in reversed(range(6)))


def test_a_single_update_or_a_merge_over_the_bound_goes_as_it_came() -> None:
    updates = _edits(3)
    assert _merged(updates[:1], 1 << 20) == updates[:1]
    assert _merged(updates, 8) == updates  # merged, it would be over 8 bytes


def test_updates_that_do_not_merge_go_one_by_one() -> None:
    updates = [*_edits(2), b"\xff\xff\xff"]
    assert _merged(updates, 1 << 20) == updates
