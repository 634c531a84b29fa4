"""Text edits that would split a UTF-16 surrogate pair are refused against the text as held.

Yjs counts text in UTF-16 code units and yrs stores UTF-8: an insert origin, right origin or
delete boundary between the two halves of an astral character (an emoji, a CJK extension B
ideograph) is accepted by pycrdt and leaves a document that re-encodes differently each time and
diverges between replicas. `inspect` refuses such an update with ``surrogate_split``.
"""

from __future__ import annotations

from typing import Any

import pycrdt as Y
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ProtocolError, UnsafeUpdate
from core.settings import SyncLimits
from schema import collection, to_row
from sync.record import TRUSTED_LIMITS, RecordDoc, root_kinds
from sync.ycheck import Inspection, OriginIndex, RootKind, inspect
from sync.yupdate import ID, decode_state_vector, decode_update
from tests.test_yupdate_hazards import string_item, update

LIMITS = SyncLimits()
PEOPLE = collection("people")
ROOTS = {"fields": RootKind.MAP, "notes": RootKind.TEXT, "tags": RootKind.ARRAY}
AUTHOR, OTHER = 1, 2


def _held(text: str, delete: tuple[int, int] | None = None) -> tuple[bytes, OriginIndex]:
    """A document whose notes AUTHOR wrote as ``text`` (one item), optionally with a UTF-8
    byte range deleted afterwards."""
    doc = Y.Doc(client_id=AUTHOR)
    notes = doc.get("notes", type=Y.Text)
    notes += text
    if delete is not None:
        del notes[delete[0] : delete[1]]
    state = bytes(doc.get_update())
    return state, OriginIndex.from_state(state, TRUSTED_LIMITS)


def _judge(state: bytes, index: OriginIndex, data: bytes, client: int = OTHER) -> Inspection:
    held = decode_state_vector(bytes(Y.get_state(state)), TRUSTED_LIMITS)
    return inspect(data, limits=LIMITS, roots=ROOTS, held=held,
                   bound_clients={client, AUTHOR}, index=index)


def _refused(state: bytes, index: OriginIndex, data: bytes) -> None:
    with pytest.raises(UnsafeUpdate) as caught:
        _judge(state, index, data)
    assert caught.value.code == "surrogate_split", caught.value


# "a😀b": units a=1:0, high=1:1, low=1:2, b=1:3
SPLITS = {
    "insert origin on the high half": update([(OTHER, 0, [string_item("X", origin=ID(1, 1))])]),
    "insert between the halves": update(
        [(OTHER, 0, [string_item("X", origin=ID(1, 1), right=ID(1, 2))])]),
    "right origin on the low half": update([(OTHER, 0, [string_item("X", right=ID(1, 2))])]),
    "delete starting on the low half": update([], {AUTHOR: [(2, 2)]}),
    "delete ending on the high half": update([], {AUTHOR: [(0, 2)]}),
    "delete of the high half alone": update([], {AUTHOR: [(1, 1)]}),
}


@pytest.mark.parametrize("data", SPLITS.values(), ids=SPLITS.keys())
def test_edits_inside_a_held_surrogate_pair_are_refused(data: bytes) -> None:
    _refused(*_held("a😀b"), data)


@pytest.mark.parametrize("data", SPLITS.values(), ids=SPLITS.keys())
def test_the_same_edits_corrupt_a_pycrdt_document(data: bytes) -> None:
    """Why the rule exists: pycrdt takes each of them, and then its document disagrees with
    itself (a reload re-encodes differently) or has lost the character."""
    state, _ = _held("a😀b")
    doc = Y.Doc()
    doc.apply_update(state)
    doc.apply_update(data)
    again = Y.Doc()
    again.apply_update(doc.get_update())
    text = str(doc.get("notes", type=Y.Text))
    assert again.get_update() != doc.get_update() or "😀" not in text


def test_edits_beside_a_pair_are_accepted() -> None:
    state, index = _held("a😀b")
    for data in (
        update([(OTHER, 0, [string_item("X", origin=ID(1, 0), right=ID(1, 1))])]),
        update([(OTHER, 0, [string_item("X", origin=ID(1, 2), right=ID(1, 3))])]),
        update([], {AUTHOR: [(1, 2)]}),  # the whole pair
        update([], {AUTHOR: [(0, 3)]}),
    ):
        _judge(state, index, data)


def test_a_pair_deleted_whole_may_be_split() -> None:
    """Deleted text holds no characters; pycrdt stays consistent (checked below)."""
    state, index = _held("a😀b", delete=(1, 5))
    data = update([(OTHER, 0, [string_item("X", origin=ID(1, 1), right=ID(1, 2))])])
    _judge(state, index, data)
    doc = Y.Doc()
    doc.apply_update(state)
    doc.apply_update(data)
    again = Y.Doc()
    again.apply_update(doc.get_update())
    assert again.get_update() == doc.get_update()


def test_pairs_the_update_writes_itself_are_protected() -> None:
    split_own = update([(OTHER, 0, [string_item("😀", parent="notes"),
                                   string_item("X", origin=ID(OTHER, 0), right=ID(OTHER, 1))])])
    half_own = update([(OTHER, 0, [string_item("😀", parent="notes")])], {OTHER: [(0, 1)]})
    state, index = _held("ab")
    for data in (split_own, half_own):
        _refused(state, index, data)


def test_an_index_extended_in_memory_knows_the_pairs_it_was_given() -> None:
    state, index = _held("ab")
    data = update([(OTHER, 0, [string_item("𠀀", origin=ID(1, 0), right=ID(1, 1))])])
    index.extend(_judge(state, index, data))
    state = _merged(state, data)
    _refused(state, index, update([(OTHER, 2, [string_item("X", origin=ID(OTHER, 0))])]))


def test_restating_a_half_deletion_already_stored_is_not_refused() -> None:
    """A document stored before this rule may hold a half-deleted pair; every honest update
    restates the document's delete set, and must not be refused for it."""
    state, index = _held("a😀b")
    state = _merged(state, update([], {AUTHOR: [(1, 1)]}))  # stored before the rule
    index = OriginIndex.from_state(state, TRUSTED_LIMITS)
    restating = update([(OTHER, 0, [string_item("Z", origin=ID(1, 2))])], {AUTHOR: [(1, 1)]})
    _judge(state, index, restating)


def _merged(state: bytes, data: bytes) -> bytes:
    doc = Y.Doc()
    doc.apply_update(state)
    doc.apply_update(data)
    return bytes(doc.get_update())


# --- the property: several writers edit at every offset of astral text -------------------------

astral = st.text(st.sampled_from("a中é😀𠀀𝄞👍🏽"), min_size=1, max_size=8)
edit = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10_000), astral),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 6)),
)
rounds = st.lists(st.tuples(st.integers(0, 2), st.booleans(), edit), min_size=1, max_size=8)
WRITERS = (11, 12, 13)


class Hub:
    """The hub's judging path without the network: inspect against the held index, then apply
    (as `hub.gate` does), and keep what was accepted."""

    def __init__(self, seed: bytes) -> None:
        self.doc = RecordDoc(PEOPLE, "p1", state=seed)
        self.index = OriginIndex.from_state(seed, TRUSTED_LIMITS)

    def push(self, client: int, data: bytes) -> ProtocolError | None:
        held = decode_state_vector(self.doc.state_vector(), TRUSTED_LIMITS)
        try:
            inspection = inspect(data, limits=LIMITS, roots=_roots(), held=held,
                                 bound_clients={client}, index=self.index)
        except ProtocolError as exc:
            return exc
        self.doc.apply(data, in_order=True)
        self.index.extend(inspection)
        return None


def _roots() -> dict[str, RootKind]:
    return root_kinds(PEOPLE)


def _units(text: str) -> list[int]:
    data = text.encode("utf-16-le")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def _is_high(unit: int) -> bool:
    return 0xD800 <= unit <= 0xDBFF


def _utf8_at(text: str, offset16: int) -> int:
    """The UTF-8 byte offset of a UTF-16 boundary of ``text``."""
    prefix = text.encode("utf-16-le")[: 2 * offset16].decode("utf-16-le")
    return len(prefix.encode())


def _scratch(doc: RecordDoc) -> RecordDoc:
    return RecordDoc(PEOPLE, doc.record_id, client_id=doc.client_id, state=doc.encode_state())


def _pair_ids(doc: RecordDoc, at16: int) -> tuple[ID, ID]:
    """The ids of the two halves of the pair that starts at UTF-16 offset ``at16``, read from
    the delete set of an honest probe deleting that character (what pycrdt itself names)."""
    text = _read(doc)
    start = _utf8_at(text, at16)
    probe = _scratch(doc).edit_text("notes", start, delete=_utf8_at(text, at16 + 2) - start)
    held = decode_update(doc.encode_state(), TRUSTED_LIMITS).delete_set
    fresh = [ID(client, clock + n)
             for client, ranges in decode_update(probe, TRUSTED_LIMITS).delete_set.items()
             for clock, length in ranges for n in range(length)
             if not any(c <= clock + n < c + ln for c, ln in held.get(client, ()))]
    high, low = sorted(fresh)
    return high, low


def _read(doc: RecordDoc) -> str:
    return str(doc.content()["notes"])


def _edit(doc: RecordDoc, operation: tuple[Any, ...]) -> tuple[bytes, bool]:
    """The update of one edit at a UTF-16 offset of the writer's text, and whether it splits
    a surrogate pair (then it is built by hand: no honest API can make it)."""
    text = _read(doc)
    units = _units(text)
    if operation[0] == "insert":
        at = operation[1] % (len(units) + 1)
        if 0 < at < len(units) and _is_high(units[at - 1]):
            high, low = _pair_ids(doc, at - 1)
            honest = _scratch(doc).edit_text("notes", 0, insert="·")
            first = decode_update(honest, TRUSTED_LIMITS).structs[0]
            return update([(first.client, first.clock, [string_item(
                operation[2], origin=high, right=low)])]), True
        return _scratch(doc).edit_text("notes", _utf8_at(text, at), insert=operation[2]), False
    if not units:
        return _scratch(doc).edit_text("notes", 0, insert="·"), False
    start = operation[1] % len(units)
    end = min(start + operation[2], len(units))
    lo = start - 1 if start and _is_high(units[start - 1]) else start
    hi = end + 1 if end < len(units) and _is_high(units[end - 1]) else end
    honest = _scratch(doc).edit_text("notes", _utf8_at(text, lo),
                                     delete=_utf8_at(text, hi) - _utf8_at(text, lo))
    if (lo, hi) == (start, end):
        return honest, False
    keep = []  # units the split delete leaves: the outer halves of the widened pairs
    if lo < start:
        keep.append(_pair_ids(doc, lo)[0])
    if hi > end:
        keep.append(_pair_ids(doc, end - 1)[1])
    deletes: dict[int, list[tuple[int, int]]] = {}
    for client, ranges in decode_update(honest, TRUSTED_LIMITS).delete_set.items():
        for clock, length in ranges:
            cuts = sorted(k.clock for k in keep if k.client == client
                          and clock <= k.clock < clock + length)
            cursor = clock
            for cut in [*cuts, clock + length]:
                if cut > cursor:
                    deletes.setdefault(client, []).append((cursor, cut - cursor))
                cursor = cut + 1
    return update([], deletes), True


def _assert_sound(doc: RecordDoc) -> None:
    """Re-encodes to itself, and its projection row says what the document says."""
    state = doc.encode_state()
    reloaded = RecordDoc(PEOPLE, doc.record_id, state=state)
    assert reloaded.encode_state() == state
    assert RecordDoc(PEOPLE, doc.record_id, state=reloaded.encode_state()).encode_state() == state
    assert to_row(doc.project())["notes"] == _read(doc) == _read(reloaded)


@settings(max_examples=200)
@given(seed_text=astral, steps=rounds)
def test_text_edits_at_every_offset_leave_the_hub_sound(
    seed_text: str, steps: list[tuple[int, bool, tuple[Any, ...]]]
) -> None:
    author = RecordDoc(PEOPLE, "p1", client_id=10)
    author.write({"tenant_id": "t1", "full_name": "Zara Khan", "notes": seed_text})
    hub = Hub(author.encode_state())
    writers = [RecordDoc(PEOPLE, "p1", client_id=c, state=author.encode_state())
               for c in WRITERS]
    for who, pull_first, operation in steps:
        writer = writers[who]
        if pull_first:
            writer.apply(hub.doc.diff(writer.state_vector()))
        data, splits = _edit(writer, operation)
        refusal = hub.push(writer.client_id, data)
        if refusal is not None:
            # only a split is refused (it may also be accepted: a concurrent delete of the
            # whole pair reached the hub first, and splitting deleted text is harmless)
            assert splits and refusal.code == "surrogate_split", refusal
            continue
        if splits:  # the writer's own view still holds the pair: it takes the hub's instead
            writer.apply(hub.doc.diff(writer.state_vector()))
        else:
            writer.apply(data)
        _assert_sound(hub.doc)
    for writer in writers:
        writer.apply(hub.doc.diff(writer.state_vector()))
        _assert_sound(writer)
        assert writer.content() == hub.doc.content()
        assert writer.state_vector() == hub.doc.state_vector()
