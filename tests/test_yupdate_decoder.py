"""Unit tests of sync/yupdate.py and sync/ycheck.py on updates produced by pycrdt and by hand."""

from __future__ import annotations

import struct
from typing import Any

import pycrdt as Y
import pytest

from core.errors import CausalityError, MalformedFrame, ProtocolError, UnsafeUpdate
from core.settings import SyncLimits
from sync.ycheck import (
    OriginIndex,
    RootKind,
    UpdateEffects,
    check_causality,
    check_schema,
    effects,
    inspect,
)
from sync.yupdate import (
    ID,
    ContentKind,
    Placement,
    StructKind,
    Unplaced,
    decode_state_vector,
    decode_update,
    resolve_placements,
)
from tests.test_yupdate_hazards import (
    any_item,
    deleted_item,
    gc,
    held_index,
    item,
    leb128,
    refused,
    string_item,
    update,
)

LIMITS = SyncLimits()
ROOTS = {"fields": RootKind.MAP, "notes": RootKind.TEXT, "tags": RootKind.ARRAY}
ME = 7
OTHER = 8


class Replica:
    """A pycrdt document with the record layout, recording each change as an update."""

    def __init__(self, client_id: int = ME) -> None:
        self.doc = Y.Doc(client_id=client_id)
        self.fields: Y.Map[Any] = self.doc.get("fields", type=Y.Map)
        self.notes = self.doc.get("notes", type=Y.Text)
        self.tags: Y.Array[Any] = self.doc.get("tags", type=Y.Array)

    def change(self, *edits: Any) -> bytes:
        """Run ``edits`` (callables) in one transaction and return the incremental update."""
        before = self.doc.get_state()
        with self.doc.transaction():
            for edit in edits:
                edit()
        return bytes(self.doc.get_update(before))


def _inspect(replica: Replica, receiver: Replica, data: bytes) -> UpdateEffects:
    return inspect(
        data,
        limits=LIMITS,
        roots=ROOTS,
        held=decode_state_vector(receiver.doc.get_state(), LIMITS),
        bound_clients={replica.doc.client_id},
        index=OriginIndex.from_state(bytes(receiver.doc.get_update()), LIMITS),
    ).effects


# --- decoding pycrdt's own updates -----------------------------------------------------------


def test_map_set_overwrite_and_delete() -> None:
    r = Replica()
    first = decode_update(r.change(lambda: r.fields.__setitem__("name", "Ana")), LIMITS)
    (s,) = first.structs
    assert (s.kind, s.content, s.client, s.clock, s.length) == (
        StructKind.ITEM,
        ContentKind.ANY,
        ME,
        0,
        1,
    )
    assert (s.parent, s.parent_sub, s.origin, s.values) == ("fields", "name", None, ("Ana",))
    assert first.clients == {ME: (0, 1)}
    assert first.delete_set == {}

    value = {"a": [1, 2.5, None, True], "b": {"c": "d"}}
    second = decode_update(r.change(lambda: r.fields.__setitem__("name", value)), LIMITS)
    (s,) = second.structs
    assert (s.origin, s.parent, s.values) == (ID(ME, 0), None, (value,))
    assert second.delete_set == {ME: ((0, 1),)}

    third = decode_update(r.change(lambda: r.fields.__delitem__("name")), LIMITS)
    assert third.structs == ()
    assert third.clients == {}
    assert third.delete_set == {ME: ((0, 2),)}


def test_text_lengths_are_utf16_code_units() -> None:
    r = Replica()
    decoded = decode_update(r.change(lambda: r.notes.insert(0, "h😀é")), LIMITS)
    (s,) = decoded.structs
    assert (s.content, s.text, s.length, s.parent) == (ContentKind.STRING, "h😀é", 4, "notes")
    assert decoded.clients == {ME: (0, 4)}
    # pycrdt indexes text by UTF-8 bytes: the emoji is bytes 1..5, clocks 1..2
    removal = decode_update(r.change(lambda: r.notes.__delitem__(slice(1, 5))), LIMITS)
    assert removal.delete_set == {ME: ((1, 2),)}
    assert str(r.notes) == "hé"
    again = decode_update(r.change(lambda: r.notes.insert(0, "𝄞")), LIMITS)
    assert again.clients == {ME: (4, 6)}


def test_array_insert_and_delete() -> None:
    r = Replica()
    decoded = decode_update(r.change(lambda: r.tags.extend(["a", 1, {"k": [None]}])), LIMITS)
    (s,) = decoded.structs
    assert (s.content, s.parent, s.parent_sub, s.length) == (ContentKind.ANY, "tags", None, 3)
    assert s.values == ("a", 1.0, {"k": [None]})
    removal = decode_update(r.change(lambda: r.tags.__delitem__(1)), LIMITS)
    assert removal.delete_set == {ME: ((1, 1),)}


def test_many_fields_in_one_update() -> None:
    r = Replica()
    values = {f"field_{i}": i if i % 3 else f"text {i}" for i in range(500)}
    decoded = decode_update(r.change(lambda: r.fields.update(values)), LIMITS)
    assert len(decoded.structs) == 500
    assert {s.parent_sub: s.values[0] for s in decoded.structs} == values
    assert decoded.clients == {ME: (0, 500)}


def test_full_state_decodes_and_indexes() -> None:
    r = Replica()
    r.change(lambda: r.fields.__setitem__("stage", "NEW"), lambda: r.notes.insert(0, "abc😀"))
    r.change(lambda: r.fields.__setitem__("stage", "WON"), lambda: r.tags.append("x"))
    r.change(lambda: r.notes.__delitem__(slice(1, 2)))
    state = bytes(r.doc.get_update())
    decoded = decode_update(state, LIMITS)
    assert decoded.clients == {ME: (0, sum(s.length for s in decoded.structs))}
    assert decode_state_vector(bytes(r.doc.get_state()), LIMITS) == {ME: decoded.clients[ME][1]}
    index = OriginIndex.from_state(state, LIMITS)
    assert index.state_vector == {ME: decoded.clients[ME][1]}
    assert index.lookup(ID(ME, 0)) == Placement("fields", "stage")
    assert index.lookup(ID(ME, 3)) == Placement("notes", None)
    assert index.lookup(ID(ME, 99)) is Unplaced.UNKNOWN
    assert index.lookup(ID(OTHER, 0)) is Unplaced.UNKNOWN


def test_state_vector_is_strict() -> None:
    assert decode_state_vector(b"\x00", LIMITS) == {}
    assert decode_state_vector(
        leb128(2) + leb128(ME) + leb128(3) + leb128(OTHER) + leb128(9), LIMITS
    ) == {
        ME: 3,
        OTHER: 9,
    }
    with pytest.raises(MalformedFrame) as caught:
        decode_state_vector(leb128(2) + leb128(ME) + leb128(3) + leb128(ME) + leb128(9), LIMITS)
    assert caught.value.code == "duplicate_client"
    with pytest.raises(MalformedFrame) as caught:
        decode_state_vector(b"\x00\x00", LIMITS)
    assert caught.value.code == "trailing_bytes"
    with pytest.raises(MalformedFrame) as caught:
        decode_state_vector(leb128(1) + leb128(ME), LIMITS)
    assert caught.value.code == "truncated"


def test_empty_update_decodes() -> None:
    decoded = decode_update(bytes(Y.Doc().get_update()), LIMITS)
    assert (decoded.structs, decoded.clients, decoded.delete_set) == ((), {}, {})


# --- malformed bytes -------------------------------------------------------------------------


def test_every_truncation_of_a_real_update_is_refused() -> None:
    r = Replica()
    data = r.change(
        lambda: r.fields.__setitem__("stage", {"deep": [1, "x"]}),
        lambda: r.notes.insert(0, "héllo"),
        lambda: r.tags.extend([1.5, None]),
    )
    for cut in range(len(data)):
        refused(MalformedFrame, "truncated", data[:cut])


def test_bad_utf8_is_refused() -> None:
    body = leb128(2) + b"\xc3\x28"
    refused(MalformedFrame, "bad_utf8", update([(ME, 0, [item(4, body, parent="notes")])]))
    lone_surrogate = leb128(3) + b"\xed\xa0\x80"
    refused(
        MalformedFrame, "bad_utf8", update([(ME, 0, [item(4, lone_surrogate, parent="notes")])])
    )


@pytest.mark.parametrize(
    ("value", "error", "code"),
    [
        (b"\x7f", UnsafeUpdate, "any_undefined"),
        (b"\x74\x01\x00", UnsafeUpdate, "any_binary"),
        (b"\x7b" + struct.pack(">d", float("nan")), UnsafeUpdate, "non_finite_number"),
        (b"\x7c" + struct.pack(">f", float("inf")), UnsafeUpdate, "non_finite_number"),
        (b"\x70", MalformedFrame, "bad_any_tag"),
    ],
    ids=["undefined", "binary", "nan", "infinity", "unknown-tag"],
)
def test_any_values_outside_json_are_refused(
    value: bytes, error: type[ProtocolError], code: str
) -> None:
    refused(error, code, update([(ME, 0, [item(8, b"\x01" + value, key="k")])]))


def test_any_scalars_decode() -> None:
    values = b"".join(
        [
            b"\x7d" + b"\x45",  # varint -5
            b"\x7a" + struct.pack(">q", 2**60 + 1),
            b"\x7c" + struct.pack(">f", 1.5),
            b"\x79",
            b"\x78",
            b"\x7e",
        ]
    )
    decoded = decode_update(update([(ME, 0, [item(8, b"\x06" + values, parent="tags")])]), LIMITS)
    assert decoded.structs[0].values == (-5, 2**60 + 1, 1.5, False, True, None)


def test_flags_on_a_gc_and_bad_parent_info_are_refused() -> None:
    refused(MalformedFrame, "bad_info", update([(ME, 0, [b"\x80" + leb128(ME) + b"\x00\x01"])]))
    bad_parent = b"\x08" + leb128(2) + leb128(1) + b"\x7e"
    refused(MalformedFrame, "bad_parent_info", update([(ME, 0, [bad_parent])]))


def test_empty_client_block_and_clock_overflow_are_refused() -> None:
    refused(
        MalformedFrame, "empty_client", leb128(1) + leb128(0) + leb128(ME) + leb128(0) + b"\x00"
    )
    top = 2**53 - 1
    refused(MalformedFrame, "clock_overflow", update([(ME, top - 1, [gc(2)])]))
    refused(MalformedFrame, "clock_overflow", update([], {ME: [(top, 1)]}))


def test_origins_that_cannot_exist_are_refused() -> None:
    own_future = update([(ME, 0, [any_item(1, key="a"), any_item(2, origin=ID(ME, 1))])])
    with pytest.raises(CausalityError) as caught:
        decode_update(own_future, LIMITS)
    assert caught.value.code == "forward_origin"
    cycle = update(
        [
            (ME, 0, [any_item(1, origin=ID(OTHER, 0))]),
            (OTHER, 0, [any_item(2, origin=ID(ME, 0))]),
        ]
    )
    with pytest.raises(CausalityError) as caught:
        decode_update(cycle, LIMITS)
    assert caught.value.code == "origin_cycle"
    between = update(
        [
            (OTHER, 0, [any_item(1, key="a"), string_item("x", parent="notes")]),
            (ME, 0, [string_item("y", origin=ID(OTHER, 0), right=ID(OTHER, 1))]),
        ]
    )
    with pytest.raises(CausalityError) as caught:
        decode_update(between, LIMITS)
    assert caught.value.code == "origin_conflict"


def test_origins_resolve_across_clients_in_any_wire_order() -> None:
    data = update(
        [
            (ME, 0, [string_item("b", origin=ID(OTHER, 0))]),
            (OTHER, 0, [string_item("a", parent="notes")]),
        ]
    )
    decoded = decode_update(data, LIMITS)
    assert resolve_placements(decoded, strict=True) == (Placement("notes", None),) * 2


def test_items_attached_to_collected_structs() -> None:
    data = update(
        [
            (OTHER, 0, [gc(2), string_item("z", parent="notes")]),
            (
                ME,
                0,
                [
                    string_item("x", origin=ID(OTHER, 1)),
                    string_item("y", origin=ID(OTHER, 0), right=ID(OTHER, 2)),
                ],
            ),
        ]
    )
    decoded = decode_update(data, LIMITS)
    # as in Yjs: a collected origin falls back to the right origin, else the item is collected
    assert resolve_placements(decoded) == (
        Unplaced.COLLECTED,
        Placement("notes", None),
        Unplaced.COLLECTED,
        Placement("notes", None),
    )
    # our documents never hold GC structs an item could legitimately be attached to
    with pytest.raises(CausalityError) as caught:
        resolve_placements(decoded, strict=True)
    assert caught.value.code == "collected_origin"


# --- check_causality ---------------------------------------------------------------------------


def test_causality_accepts_a_contiguous_update_and_its_own_deletes() -> None:
    data = update([(ME, 4, [string_item("abc", parent="notes")])], {ME: [(0, 6)], OTHER: [(0, 2)]})
    check_causality(decode_update(data, LIMITS), {ME: 4, OTHER: 2}, {ME})


def test_causality_reports_retries_and_overlaps() -> None:
    resent = decode_update(update([(ME, 0, [any_item(1, key="a")])]), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_causality(resent, {ME: 1}, {ME})
    assert caught.value.code == "already_applied"
    partial = decode_update(update([(ME, 0, [any_item(1, key="a"), any_item(2, key="b")])]), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_causality(partial, {ME: 1}, {ME})
    assert caught.value.code == "overlap"
    mixed = decode_update(
        update([(ME, 0, [any_item(1, key="a")]), (OTHER, 0, [any_item(2, key="b")])]), LIMITS
    )
    with pytest.raises(CausalityError) as caught:
        check_causality(mixed, {ME: 1}, {ME, OTHER})
    assert caught.value.code == "overlap"


# --- check_schema ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("struct_bytes", "code"),
    [
        (any_item(1, parent="fields"), "key_mismatch"),
        (string_item("x", parent="notes", key="k"), "key_mismatch"),
        (any_item(1, parent="notes"), "content_mismatch"),
        (string_item("x", parent="tags"), "content_mismatch"),
        (any_item(1, 2, key="k"), "map_multi_value"),
    ],
    ids=["map-without-key", "text-with-key", "any-in-text", "string-in-array", "multi-value"],
)
def test_schema_refusals(struct_bytes: bytes, code: str) -> None:
    with pytest.raises(UnsafeUpdate) as caught:
        check_schema(decode_update(update([(ME, 0, [struct_bytes])]), LIMITS), ROOTS)
    assert caught.value.code == code


def test_schema_accepts_deleted_content_anywhere() -> None:
    data = update(
        [
            (
                ME,
                0,
                [
                    deleted_item(2, key="k"),
                    deleted_item(3, parent="notes"),
                    deleted_item(1, parent="tags"),
                ],
            )
        ]
    )
    check_schema(decode_update(data, LIMITS), ROOTS)


def test_schema_places_items_through_the_index() -> None:
    index = held_index(
        [(OTHER, 0, [string_item("hello", parent="notes"), any_item("x", key="stage")])]
    )
    into_text = decode_update(update([(ME, 0, [any_item(1, origin=ID(OTHER, 2))])]), LIMITS)
    check_schema(into_text, ROOTS)  # without the index the item cannot be placed
    with pytest.raises(UnsafeUpdate) as caught:
        check_schema(into_text, ROOTS, index=index)
    assert caught.value.code == "content_mismatch"
    right_on_key = decode_update(update([(ME, 0, [any_item(1, right=ID(OTHER, 5))])]), LIMITS)
    with pytest.raises(UnsafeUpdate) as caught:
        check_schema(right_on_key, ROOTS, index=index)
    assert caught.value.code == "map_right_origin"
    missing = decode_update(update([(ME, 0, [any_item(1, origin=ID(OTHER, 6))])]), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_schema(missing, ROOTS, index=index)
    assert caught.value.code == "missing_origin"


# --- effects -----------------------------------------------------------------------------------


def test_effects_of_pycrdt_changes() -> None:
    r, receiver = Replica(), Replica(client_id=99)

    def step(*edits: Any) -> UpdateEffects:
        data = r.change(*edits)
        result = _inspect(r, receiver, data)
        receiver.doc.apply_update(data)
        return result

    first = step(
        lambda: r.fields.update({"stage": "NEW", "name": "Ana"}),
        lambda: r.notes.insert(0, "héllo 😀"),
        lambda: r.tags.extend(["a", "b", "c"]),
    )
    assert first.map_set == {"fields": {"stage": "NEW", "name": "Ana"}}
    assert first.text_inserted == {"notes": ("héllo 😀",)}
    assert first.array_inserted == {"tags": ("a", "b", "c")}
    assert (first.map_deleted, first.text_deleted, first.array_deleted) == ({}, {}, {})

    second = step(
        lambda: r.fields.__setitem__("stage", "WON"),
        lambda: r.fields.__delitem__("name"),
        lambda: r.notes.__delitem__(slice(7, 11)),  # the emoji: 4 UTF-8 bytes, 2 UTF-16 units
        lambda: r.tags.__delitem__(slice(0, 2)),
    )
    assert second.map_set == {"fields": {"stage": "WON"}}
    assert second.map_deleted == {"fields": frozenset({"name"})}
    assert second.keys("fields") == {"stage", "name"}
    assert second.text_deleted == {"notes": 2}
    assert second.array_deleted == {"tags": 2}
    assert second.text_inserted == {} and second.array_inserted == {}

    third = step(
        lambda: r.fields.__setitem__("stage", "LOST"), lambda: r.fields.__setitem__("stage", "WON")
    )
    assert third.map_set == {"fields": {"stage": "WON"}}
    fourth = step(lambda: r.notes.insert(0, "abc"), lambda: r.notes.__delitem__(slice(1, 2)))
    assert fourth.text_inserted == {"notes": ("a", "c")}
    assert fourth.text_deleted == {}


def test_effects_count_only_newly_deleted_units() -> None:
    index = OriginIndex.from_state(
        update([(OTHER, 0, [string_item("abcdef", parent="notes")])], {OTHER: [(0, 2)]}), LIMITS
    )
    decoded = decode_update(update([], {OTHER: [(0, 4)]}), LIMITS)
    assert effects(decoded, index).text_deleted == {"notes": 2}


def test_map_winner_is_the_end_of_the_updates_own_chain() -> None:
    index = held_index([(OTHER, 0, [any_item("NEW", key="stage")])])
    chain = update(
        [(ME, 0, [any_item("A", origin=ID(OTHER, 0)), any_item("B", origin=ID(ME, 0))])],
        {ME: [(0, 1)], OTHER: [(0, 1)]},
    )
    assert effects(decode_update(chain, LIMITS), index).map_set == {"fields": {"stage": "B"}}
    fork = update(
        [
            (ME, 0, [any_item("mine", origin=ID(OTHER, 0))]),
            (9, 0, [any_item("higher client", origin=ID(OTHER, 0))]),
        ]
    )
    assert effects(decode_update(fork, LIMITS), index).map_set == {
        "fields": {"stage": "higher client"}
    }
    deleted_end = update([(ME, 0, [any_item("X", origin=ID(OTHER, 0))])], {ME: [(0, 1)]})
    result = effects(decode_update(deleted_end, LIMITS), index)
    assert result.map_set == {}
    assert result.map_deleted == {"fields": frozenset({"stage"})}


def test_text_split_inside_a_surrogate_pair_becomes_a_replacement_character() -> None:
    data = update([(ME, 0, [string_item("a😀b", parent="notes")])], {ME: [(2, 1)]})
    result = effects(decode_update(data, LIMITS), OriginIndex())
    assert result.text_inserted == {"notes": ("a\ufffd", "b")}
