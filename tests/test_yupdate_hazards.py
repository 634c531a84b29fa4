"""One test per hazard class of DESIGN.md "Known hazards", each update built by hand from the v1
format with `Lib0Writer` and refused by sync/yupdate.py or sync/ycheck.py with its reason code.

These bytes are hostile: none of them is ever given to pycrdt in this process (some segfault it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from core.errors import CausalityError, FrameTooLarge, MalformedFrame, ProtocolError, UnsafeUpdate
from core.settings import SyncLimits
from sync._lib0 import Lib0Writer
from sync.ycheck import OriginIndex, RootKind, check_causality, check_schema, inspect
from sync.yupdate import ID, decode_update

LIMITS = SyncLimits()
ROOTS = {"fields": RootKind.MAP, "notes": RootKind.TEXT, "tags": RootKind.ARRAY}
ME = 7
OTHER = 8

# --- a builder of v1 updates, byte by byte ---------------------------------------------------


def leb128(value: int) -> bytes:
    """An unsigned LEB128 varint of any width (lib0's writer refuses past 53 bits, on purpose)."""
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def any_bytes(value: Any) -> bytes:
    """lib0 Any encoding of a (shallow) JSON value."""
    w = Lib0Writer()
    if value is None:
        w.write_u8(126)
    elif value is True:
        w.write_u8(120)
    elif value is False:
        w.write_u8(121)
    elif isinstance(value, int):
        w.write_u8(125)
        w.write_var_int(value)
    elif isinstance(value, float):
        w.write_u8(123)
        w.write_f64(value)
    elif isinstance(value, str):
        w.write_u8(119)
        w.write_var_string(value)
    elif isinstance(value, list):
        w.write_u8(117)
        w.write_var_uint(len(value))
        for element in value:
            w.write_bytes(any_bytes(element))
    else:
        w.write_u8(118)
        w.write_var_uint(len(value))
        for key, element in value.items():
            w.write_var_string(key)
            w.write_bytes(any_bytes(element))
    return w.to_bytes()


def item(
    ref: int,
    body: bytes,
    *,
    parent: str | ID = "fields",
    key: str | None = None,
    origin: ID | None = None,
    right: ID | None = None,
) -> bytes:
    """One Item struct: info byte, origins or parent info, then the raw content ``body``.

    A root ``parent`` is written as its name, an `ID` parent (a nested type's item) as an id.
    """
    w = Lib0Writer()
    info = ref | (0x80 if origin else 0) | (0x40 if right else 0) | (0x20 if key is not None else 0)
    w.write_u8(info)
    for ref_id in (origin, right):
        if ref_id is not None:
            w.write_var_uint(ref_id.client)
            w.write_var_uint(ref_id.clock)
    if origin is None and right is None:
        if isinstance(parent, ID):
            w.write_var_uint(0)
            w.write_var_uint(parent.client)
            w.write_var_uint(parent.clock)
        else:
            w.write_var_uint(1)
            w.write_var_string(parent)
        if key is not None:
            w.write_var_string(key)
    w.write_bytes(body)
    return w.to_bytes()


def any_item(*values: Any, **where: Any) -> bytes:
    """A ContentAny item (ref 8) holding ``values``."""
    return item(8, leb128(len(values)) + b"".join(any_bytes(v) for v in values), **where)


def string_item(text: str, **where: Any) -> bytes:
    """A ContentString item (ref 4)."""
    w = Lib0Writer()
    w.write_var_string(text)
    return item(4, w.to_bytes(), **where)


def deleted_item(length: int, **where: Any) -> bytes:
    """A ContentDeleted item (ref 1)."""
    return item(1, leb128(length), **where)


def gc(length: int) -> bytes:
    """A GC struct (info 0)."""
    return b"\x00" + leb128(length)


def update(
    blocks: Sequence[tuple[int, int, Sequence[bytes]]],
    deletes: Mapping[int, Iterable[tuple[int, int]]]
    | Sequence[tuple[int, Iterable[tuple[int, int]]]] = (),
) -> bytes:
    """A v1 update from (client, first clock, structs) blocks and a delete set."""
    out = bytearray(leb128(len(blocks)))
    for client, clock, structs in blocks:
        out += leb128(len(structs)) + leb128(client) + leb128(clock) + b"".join(structs)
    pairs = list(deletes.items()) if isinstance(deletes, Mapping) else list(deletes)
    out += leb128(len(pairs))
    for client, ranges in pairs:
        listed = list(ranges)
        out += leb128(client) + leb128(len(listed))
        for clock, length in listed:
            out += leb128(clock) + leb128(length)
    return bytes(out)


def refused(
    error: type[ProtocolError], code: str, data: bytes, limits: SyncLimits = LIMITS
) -> None:
    """Assert ``decode_update`` refuses ``data`` with ``error`` and ``code``."""
    with pytest.raises(error) as caught:
        decode_update(data, limits)
    assert caught.value.code == code, caught.value


def held_index(blocks: Sequence[tuple[int, int, Sequence[bytes]]]) -> OriginIndex:
    """An index of a receiver holding exactly ``blocks`` (built by hand, trusted limits)."""
    return OriginIndex.from_state(update(blocks), LIMITS)


# --- the hazards -----------------------------------------------------------------------------


def test_same_client_id_twice_is_refused() -> None:
    data = update([(ME, 0, [any_item(1, key="a")]), (ME, 1, [any_item(2, key="b")])])
    refused(UnsafeUpdate, "duplicate_client", data)
    in_delete_set = update([(ME, 0, [any_item(1, key="a")])], [(ME, [(0, 1)]), (ME, [(0, 1)])])
    refused(UnsafeUpdate, "duplicate_delete_client", in_delete_set)


@pytest.mark.parametrize(
    "struct",
    [
        gc(0),
        deleted_item(0, key="a"),
        string_item("", parent="notes"),
        item(8, leb128(0), key="a"),
    ],
    ids=["gc", "deleted", "string", "any"],
)
def test_zero_length_structs_are_refused(struct: bytes) -> None:
    refused(UnsafeUpdate, "zero_length", update([(ME, 0, [struct])]))


def test_zero_length_delete_range_is_refused() -> None:
    data = update([(ME, 0, [any_item(1, key="a")])], {ME: [(0, 0)]})
    refused(UnsafeUpdate, "empty_delete_range", data)


@pytest.mark.parametrize("opener", [b"\x75\x01", b"\x76\x01\x01k"], ids=["arrays", "objects"])
def test_values_nested_thousands_deep_are_refused_without_recursion(opener: bytes) -> None:
    depth = 200_000
    value = opener * depth + b"\x7e"
    data = update([(ME, 0, [item(8, b"\x01" + value, key="deep")])])
    started = time.perf_counter()
    refused(FrameTooLarge, "too_deep", data)
    assert time.perf_counter() - started < 1.0


def test_nesting_up_to_the_bound_is_accepted() -> None:
    limits = SyncLimits(max_nesting_depth=4)
    value: Any = "leaf"
    for _ in range(4):
        value = [value]
    decoded = decode_update(update([(ME, 0, [any_item(value, key="k")])]), limits)
    assert decoded.structs[0].values == (value,)
    refused(FrameTooLarge, "too_deep", update([(ME, 0, [any_item([value], key="k")])]), limits)


def test_nested_shared_types_are_refused() -> None:
    y_map_type = item(7, leb128(1), key="nested")
    refused(UnsafeUpdate, "content_type", update([(ME, 0, [y_map_type])]))
    child_of_an_item = any_item(1, parent=ID(OTHER, 0), key="inner")
    refused(UnsafeUpdate, "parent_item", update([(ME, 0, [child_of_an_item])]))


def test_legacy_json_content_is_refused() -> None:
    w = Lib0Writer()
    w.write_var_uint(1)
    w.write_var_string('{"stage": "WON"}')
    refused(UnsafeUpdate, "content_json", update([(ME, 0, [item(2, w.to_bytes(), key="stage")])]))


def _xml_element() -> bytes:
    w = Lib0Writer()
    w.write_var_uint(3)  # YXmlElementRefID
    w.write_var_string("script")
    return item(7, w.to_bytes(), parent="prosemirror")


def _subdoc() -> bytes:
    w = Lib0Writer()
    w.write_var_string("guid-of-a-subdoc")
    w.write_bytes(any_bytes({}))
    return item(9, w.to_bytes(), key="doc")


def _format() -> bytes:
    w = Lib0Writer()
    w.write_var_string("bold")
    w.write_var_string("true")
    return item(6, w.to_bytes(), parent="notes")


@pytest.mark.parametrize(
    ("struct", "code"),
    [
        (_xml_element(), "content_type"),
        (item(7, leb128(6), parent="notes"), "content_type"),  # XmlText
        (_subdoc(), "content_doc"),
        (_format(), "content_format"),
        (item(5, leb128(2) + b"{}", parent="notes"), "content_embed"),
        (item(3, leb128(2) + b"\x00\x01", parent="tags"), "content_binary"),
        (item(17, b"", parent="tags"), "content_unknown"),
    ],
    ids=["xml-element", "xml-text", "subdoc", "format", "embed", "binary", "unknown-ref"],
)
def test_types_the_schema_never_uses_are_refused(struct: bytes, code: str) -> None:
    refused(UnsafeUpdate, code, update([(ME, 0, [struct])]))


def test_roots_and_content_outside_the_schema_are_refused() -> None:
    xml_root = decode_update(update([(ME, 0, [string_item("<p>", parent="prosemirror")])]), LIMITS)
    with pytest.raises(UnsafeUpdate) as caught:
        check_schema(xml_root, ROOTS)
    assert caught.value.code == "unknown_root"
    text_in_map = decode_update(update([(ME, 0, [string_item("x", key="stage")])]), LIMITS)
    with pytest.raises(UnsafeUpdate) as caught:
        check_schema(text_in_map, ROOTS)
    assert caught.value.code == "content_mismatch"


@pytest.mark.parametrize(
    ("client", "clock"),
    [(2**70, 0), (2**64 + 5, 0), (2**53, 0), (ME, 2**64)],
    ids=["client-2^70", "client-2^64+5", "client-2^53", "clock-2^64"],
)
def test_varints_past_53_bits_are_refused(client: int, clock: int) -> None:
    data = leb128(1) + leb128(1) + leb128(client) + leb128(clock) + gc(1) + leb128(0)
    refused(MalformedFrame, "varint_overflow", data)


def test_largest_safe_varint_is_accepted() -> None:
    client = 2**53 - 1
    decoded = decode_update(update([(client, 0, [gc(1)])]), LIMITS)
    assert decoded.clients == {client: (0, 1)}


def test_tens_of_thousands_of_structs_are_refused_quickly() -> None:
    chain = [any_item(0, key="stage")]
    chain += [any_item(i, origin=ID(ME, i - 1)) for i in range(1, 30_000)]
    started = time.perf_counter()
    refused(FrameTooLarge, "too_many_structs", update([(ME, 0, chain)]))
    assert time.perf_counter() - started < 2.0


def test_thousands_of_items_on_one_key_are_refused() -> None:
    explicit = [any_item(i, key="stage") for i in range(LIMITS.max_structs_per_key + 1)]
    refused(FrameTooLarge, "too_many_on_key", update([(ME, 0, explicit)]))
    chained = [any_item(0, key="stage")]
    chained += [any_item(i, origin=ID(ME, i - 1)) for i in range(1, LIMITS.max_structs_per_key + 1)]
    refused(FrameTooLarge, "too_many_on_key", update([(ME, 0, chained)]))
    text = [string_item("a", parent="notes")]
    text += [
        string_item("b", origin=ID(ME, i - 1)) for i in range(1, LIMITS.max_structs_per_key + 1)
    ]
    refused(FrameTooLarge, "too_many_on_key", update([(ME, 0, text)]))


def test_thousands_of_items_chained_from_a_held_item_are_refused_with_the_index() -> None:
    index = held_index([(OTHER, 0, [any_item("NEW", key="stage")])])
    chain = [any_item(i, origin=ID(OTHER, 0) if i == 0 else ID(ME, i - 1)) for i in range(2_001)]
    data = update([(ME, 0, chain)])
    decode_update(data, LIMITS)  # alone, the decoder cannot place them
    with pytest.raises(FrameTooLarge) as caught:
        inspect(
            data, limits=LIMITS, roots=ROOTS, held={OTHER: 1}, bound_clients={ME}, index=index
        )
    assert caught.value.code == "too_many_on_key"


def test_writes_after_a_clock_gap_are_refused() -> None:
    decoded = decode_update(update([(ME, 5, [any_item("WON", key="stage")])]), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_causality(decoded, {ME: 3}, {ME})
    assert caught.value.code == "gap"
    with pytest.raises(CausalityError) as caught:
        check_causality(decoded, {}, {ME})
    assert caught.value.code == "gap"


def test_a_gc_claiming_another_clients_future_clocks_is_refused() -> None:
    decoded = decode_update(update([(OTHER, 3, [gc(1_000)])]), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_causality(decoded, {OTHER: 3, ME: 0}, {ME})
    assert caught.value.code == "foreign_client"
    own_future = decode_update(update([(ME, 9, [gc(1_000)])]), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_causality(own_future, {ME: 2}, {ME})
    assert caught.value.code == "gap"


def test_an_item_pre_empting_another_client_is_refused() -> None:
    decoded = decode_update(update([(OTHER, 0, [any_item("WON", key="stage")])]), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_causality(decoded, {}, {ME})
    assert caught.value.code == "foreign_client"


def test_an_update_waiting_for_missing_predecessors_is_refused() -> None:
    data = update([(ME, 0, [any_item("WON", origin=ID(OTHER, 4))])])
    decode_update(data, LIMITS)
    with pytest.raises(CausalityError) as caught:
        inspect(
            data, limits=LIMITS, roots=ROOTS, held={}, bound_clients={ME}, index=OriginIndex()
        )
    assert caught.value.code == "missing_origin"


def test_deleting_clocks_that_do_not_exist_is_refused() -> None:
    decoded = decode_update(update([], {OTHER: [(0, 50)]}), LIMITS)
    with pytest.raises(CausalityError) as caught:
        check_causality(decoded, {OTHER: 10}, {ME})
    assert caught.value.code == "delete_unknown"


def test_trailing_bytes_are_refused() -> None:
    refused(MalformedFrame, "trailing_bytes", update([(ME, 0, [gc(1)])]) + b"\x00")


def test_oversized_updates_are_refused_before_decoding() -> None:
    limits = SyncLimits(max_update_bytes=64)
    refused(
        FrameTooLarge,
        "update_too_large",
        update([(ME, 0, [string_item("x" * 100, parent="notes")])]),
        limits,
    )


def test_oversized_strings_and_client_counts_are_refused() -> None:
    limits = SyncLimits(max_string_bytes=10, max_clients_per_update=2)
    refused(
        FrameTooLarge,
        "string_too_large",
        update([(ME, 0, [string_item("x" * 11, parent="notes")])]),
        limits,
    )
    many = update([(client, 0, [gc(1)]) for client in range(3)])
    refused(FrameTooLarge, "too_many_clients", many, limits)


def test_skip_structs_are_refused() -> None:
    refused(UnsafeUpdate, "skip", update([(ME, 0, [gc(1), b"\x0a" + leb128(5), gc(1)])]))
