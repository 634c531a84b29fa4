"""Property tests of sync/yupdate.py and sync/ycheck.py.

1. Every incremental update pycrdt produces for a record document passes the decoder and every
   check, and `effects` says exactly what applying it to a second replica changes.
2. Random bytes and mutations of real updates give a `DecodedUpdate` or a `ProtocolError`,
   nothing else, quickly. (Fuzzed bytes are only decoded, never given to pycrdt.)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pycrdt as Y
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import CausalityError, ProtocolError
from core.settings import SyncLimits
from sync._lib0 import Lib0Writer
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
    StructKind,
    decode_state_vector,
    decode_update,
    trusted_state_vector,
)
from tests.test_yupdate_hazards import any_item, deleted_item, gc, string_item, update

LIMITS = SyncLimits()
ROOTS = {"fields": RootKind.MAP, "notes": RootKind.TEXT, "tags": RootKind.ARRAY}
WRITER = 4242
KEYS = ("stage", "name", "budget", "canvas")

# --- documents and operations ----------------------------------------------------------------

alphabet = st.sampled_from("ab é中\n😀𝄞")
short_text = st.text(alphabet, min_size=1, max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet, max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)
    ),
    max_leaves=6,
)
fraction = st.floats(0, 1)
op = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), values),
    st.tuples(st.just("unset"), st.sampled_from(KEYS)),
    st.tuples(st.just("text_insert"), fraction, short_text),
    st.tuples(st.just("text_delete"), fraction, fraction),
    st.tuples(st.just("array_insert"), fraction, st.lists(values, min_size=1, max_size=3)),
    st.tuples(st.just("array_delete"), fraction, fraction),
)
steps = st.lists(
    st.tuples(st.booleans(), st.lists(op, min_size=1, max_size=4)), min_size=1, max_size=6
)


class Replica:
    def __init__(self, client_id: int) -> None:
        self.doc = Y.Doc(client_id=client_id)
        self.fields: Y.Map[Any] = self.doc.get("fields", type=Y.Map)
        self.notes = self.doc.get("notes", type=Y.Text)
        self.tags: Y.Array[Any] = self.doc.get("tags", type=Y.Array)

    def snapshot(self) -> tuple[dict[str, Any], str, list[Any]]:
        return dict(self.fields.to_py() or {}), str(self.notes), list(self.tags.to_py() or [])

    def run(self, operation: tuple[Any, ...]) -> None:
        kind = operation[0]
        if kind == "set":
            self.fields[operation[1]] = operation[2]
        elif kind == "unset":
            if operation[1] in self.fields:
                del self.fields[operation[1]]
        elif kind == "text_insert":
            text = str(self.notes)
            at = _utf8_offset(text, round(operation[1] * len(text)))
            self.notes.insert(at, operation[2])
        elif kind == "text_delete":
            text = str(self.notes)
            start = round(operation[1] * len(text))
            end = start + round(operation[2] * (len(text) - start))
            if end > start:
                del self.notes[_utf8_offset(text, start) : _utf8_offset(text, end)]
        elif kind == "array_insert":
            at = round(operation[1] * len(self.tags))
            for offset, value in enumerate(operation[2]):
                self.tags.insert(at + offset, value)
        else:
            start = round(operation[1] * len(self.tags))
            end = start + round(operation[2] * (len(self.tags) - start))
            if end > start:
                del self.tags[start:end]


def _utf8_offset(text: str, chars: int) -> int:
    """pycrdt indexes Text by UTF-8 bytes."""
    return len(text[:chars].encode())


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _canonical(value: Any) -> str:
    """A JSON value as text, independent of key order (pycrdt does not keep it)."""
    return json.dumps(value, sort_keys=True)


_MISSING = object()


def _assert_effects_match(
    result: UpdateEffects,
    before: tuple[dict[str, Any], str, list[Any]],
    after: tuple[dict[str, Any], str, list[Any]],
) -> None:
    (fields_before, text_before, list_before), (fields_after, text_after, list_after) = (
        before,
        after,
    )
    assert set(result.map_set) <= {"fields"} and set(result.map_deleted) <= {"fields"}
    assigned = result.map_set.get("fields", {})
    removed = result.map_deleted.get("fields", frozenset())
    for key, value in assigned.items():
        assert fields_after[key] == value
    assert not removed & set(fields_after)
    for key in set(fields_before) | set(fields_after):
        if fields_before.get(key, _MISSING) != fields_after.get(key, _MISSING):
            assert key in assigned or key in removed, key

    inserted = "".join(result.text_inserted.get("notes", ()))
    deleted = result.text_deleted.get("notes", 0)
    assert _utf16_len(text_after) == _utf16_len(text_before) + _utf16_len(inserted) - deleted
    assert not Counter(text_after) - Counter(text_before) - Counter(inserted)
    if Counter(text_before) - Counter(text_after):
        assert deleted

    added = result.array_inserted.get("tags", ())
    assert len(list_after) == len(list_before) + len(added) - result.array_deleted.get("tags", 0)
    appeared = Counter(map(_canonical, list_after)) - Counter(map(_canonical, list_before))
    assert not appeared - Counter(map(_canonical, added))
    if Counter(map(_canonical, list_before)) - Counter(map(_canonical, list_after)):
        assert result.array_deleted.get("tags", 0)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(steps)
def test_pycrdt_updates_pass_every_check_and_effects_match_applying(
    plan: list[tuple[bool, list[tuple[Any, ...]]]],
) -> None:
    writer, hub = Replica(WRITER), Replica(1)
    for one_transaction, operations in plan:
        state = writer.doc.get_state()
        if one_transaction:
            with writer.doc.transaction():
                for operation in operations:
                    writer.run(operation)
        else:
            for operation in operations:
                writer.run(operation)
        data = bytes(writer.doc.get_update(state))

        held = decode_state_vector(bytes(hub.doc.get_state()), LIMITS)
        index = OriginIndex.from_state(bytes(hub.doc.get_update()), LIMITS)
        decoded = decode_update(data, LIMITS)
        if data == b"\x00\x00":  # operations that changed nothing: acknowledged, not applied
            with pytest.raises(CausalityError, match="empty"):
                check_causality(decoded, held, {WRITER})
            continue
        # no GC for root-only documents: what the "collected_origin" refusal relies on
        assert all(struct.kind is StructKind.ITEM for struct in decoded.structs)
        check_schema(decoded, ROOTS)
        check_schema(decoded, ROOTS, index=index)
        check_causality(decoded, held, {WRITER})
        result = effects(decoded, index)
        assert result == inspect(
            data, limits=LIMITS, roots=ROOTS, held=held, bound_clients={WRITER}, index=index
        ).effects

        before = hub.snapshot()
        hub.doc.apply_update(data)
        _assert_effects_match(result, before, hub.snapshot())
        assert hub.snapshot() == writer.snapshot()


def _lookups(index: OriginIndex, state_vector: dict[int, int]) -> dict[tuple[int, int], Any]:
    """Where the index places every held clock, and whether it is deleted."""
    return {(client, clock): (index.lookup(ID(client, clock)),
                              not any(True for _ in index._live_overlaps(client, clock,
                                                                         clock + 1)))
            for client, end in state_vector.items() for clock in range(end)}


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([WRITER, WRITER + 1]), st.lists(op, min_size=1,
                                                                           max_size=4)),
                min_size=1, max_size=8))
def test_an_index_extended_update_by_update_equals_one_built_from_the_state(
    plan: list[tuple[int, list[tuple[Any, ...]]]],
) -> None:
    """The gate keeps a document's origin index and extends it with each update it admits;
    judged on it, every next update has the same effects as judged on an index of the state,
    and every held clock is placed the same (two writers editing each other's items)."""
    hub = Replica(1)
    writers = {WRITER: Replica(WRITER), WRITER + 1: Replica(WRITER + 1)}
    kept = OriginIndex()
    for client, operations in plan:
        writer = writers[client]
        writer.doc.apply_update(hub.doc.get_update(writer.doc.get_state()))
        made: list[bytes] = []  # the transaction's own update: only its own deletes, as Yjs
        subscription = writer.doc.observe(lambda event, made=made: made.append(bytes(event.update)))
        with writer.doc.transaction():
            for operation in operations:
                writer.run(operation)
        writer.doc.unobserve(subscription)
        if not made:
            continue  # nothing changed
        (data,) = made
        held = decode_state_vector(bytes(hub.doc.get_state()), LIMITS)
        built = OriginIndex.from_state(bytes(hub.doc.get_update()), LIMITS)
        inspection = inspect(data, limits=LIMITS, roots=ROOTS, held=held,
                             bound_clients={client}, index=kept)
        assert inspection.effects == inspect(
            data, limits=LIMITS, roots=ROOTS, held=held, bound_clients={client},
            index=built).effects
        hub.doc.apply_update(data)
        kept.extend(inspection)
        after = decode_state_vector(bytes(hub.doc.get_state()), LIMITS)
        assert dict(kept.state_vector) == after
        assert _lookups(kept, after) == _lookups(
            OriginIndex.from_state(bytes(hub.doc.get_update()), LIMITS), after)


# --- fuzzing ---------------------------------------------------------------------------------


def _corpus() -> tuple[list[bytes], OriginIndex, dict[int, int]]:
    """Real updates of a small deterministic history, and the index of the state before the last."""
    r = Replica(WRITER)
    updates: list[bytes] = []

    def change(*edits: Callable[[], Any]) -> None:
        state = r.doc.get_state()
        with r.doc.transaction():
            for edit in edits:
                edit()
        updates.append(bytes(r.doc.get_update(state)))

    change(lambda: r.fields.update({"stage": "NEW", "canvas": {"w": [1, {"h": None}]}}))
    change(lambda: r.notes.insert(0, "héllo 😀 wörld"), lambda: r.tags.extend(["a", 2, True]))
    change(lambda: r.fields.__setitem__("stage", "WON"), lambda: r.notes.__delitem__(slice(1, 3)))
    state = r.doc.get_state()
    index = OriginIndex.from_state(bytes(r.doc.get_update()), LIMITS)
    held = decode_state_vector(bytes(state), LIMITS)
    change(
        lambda: r.tags.__delitem__(0),
        lambda: r.notes.insert(4, "中"),
        lambda: r.fields.__delitem__("canvas"),
    )
    updates.append(bytes(r.doc.get_update()))
    return updates, index, held


CORPUS, INDEX, HELD = _corpus()
TIME_BOUND_S = 0.5

mutation = st.one_of(
    st.tuples(st.just("flip"), fraction, st.integers(0, 7)),
    st.tuples(st.just("truncate"), fraction),
    st.tuples(st.just("insert"), fraction, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), fraction, st.integers(1, 8)),
    st.tuples(st.just("set"), fraction, st.integers(0, 255)),
)


def _mutate(data: bytes, change: tuple[Any, ...]) -> bytes:
    at = min(int(change[1] * len(data)), max(len(data) - 1, 0))
    kind = change[0]
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ (1 << change[2])]) + data[at + 1 :]
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + change[2] + data[at:]
    if kind == "delete":
        return data[:at] + data[at + change[2] :]
    return data[:at] + bytes([change[2]]) + data[at + 1 :]


def _check_only_protocol_errors(data: bytes) -> None:
    """Decode and check ``data``: it passes or raises a `ProtocolError`, within the time bound."""
    started = time.perf_counter()
    try:
        decoded = decode_update(data, LIMITS)
        check_schema(decoded, ROOTS)
        check_schema(decoded, ROOTS, index=INDEX)
        check_causality(decoded, HELD, {WRITER})
        effects(decoded, INDEX)
    except ProtocolError:
        pass
    assert time.perf_counter() - started < TIME_BOUND_S


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes_give_a_decoded_update_or_a_protocol_error(data: bytes) -> None:
    _check_only_protocol_errors(data)


@settings(max_examples=600, derandomize=True, deadline=None)
@given(st.sampled_from(CORPUS), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_updates_give_a_decoded_update_or_a_protocol_error(
    base: bytes, changes: list[tuple[Any, ...]]
) -> None:
    data = base
    for change in changes:
        if data:
            data = _mutate(data, change)
    _check_only_protocol_errors(data)


small_id = st.builds(ID, st.sampled_from([1, 2, WRITER]), st.integers(0, 12))
place = st.one_of(
    st.fixed_dictionaries({"parent": st.sampled_from(["fields", "notes", "tags", "xml"])}),
    st.fixed_dictionaries({"parent": st.just("fields"), "key": st.sampled_from(KEYS)}),
    st.fixed_dictionaries(
        {"origin": small_id}, optional={"right": small_id, "key": st.sampled_from(KEYS)}
    ),
    st.fixed_dictionaries({"right": small_id}),
)
shaped_struct = st.one_of(
    st.builds(gc, st.integers(1, 3)),
    st.builds(lambda v, w: any_item(*v, **w), st.lists(scalars, min_size=1, max_size=2), place),
    st.builds(lambda t, w: string_item(t, **w), short_text, place),
    st.builds(lambda n, w: deleted_item(n, **w), st.integers(1, 3), place),
)
shaped_update = st.builds(
    update,
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, WRITER]),
            st.integers(0, 12),
            st.lists(shaped_struct, min_size=1, max_size=4),
        ),
        max_size=3,
        unique_by=lambda block: block[0],
    ),
    st.dictionaries(
        st.sampled_from([1, 2, WRITER]),
        st.lists(st.tuples(st.integers(0, 14), st.integers(1, 4)), max_size=3),
        max_size=2,
    ),
)


@settings(max_examples=500, derandomize=True, deadline=None)
@given(shaped_update)
def test_well_formed_but_arbitrary_updates_give_effects_or_a_protocol_error(data: bytes) -> None:
    """Updates built from valid structs with arbitrary ids, origins and parents reach the checks."""
    _check_only_protocol_errors(data)


def test_the_fuzz_corpus_is_valid() -> None:
    for data in CORPUS:
        decode_update(data, LIMITS)


@given(st.dictionaries(st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1), max_size=60))
def test_the_trusted_state_vector_reader_agrees_with_the_strict_one(
        clocks: dict[int, int]) -> None:
    doc = Y.Doc()
    for client, length in list(clocks.items())[:3]:  # a vector pycrdt made as well
        writer = Y.Doc(client_id=client)
        writer.get("t", type=Y.Text).insert(0, "x" * (1 + length % 5))
        doc.apply_update(writer.get_update())
    real = bytes(doc.get_state())
    assert trusted_state_vector(real) == decode_state_vector(real, LIMITS)
    w = Lib0Writer()
    w.write_var_uint(len(clocks))
    for client, clock in clocks.items():
        w.write_var_uint(client)
        w.write_var_uint(clock)
    made = w.to_bytes()
    assert trusted_state_vector(made) == decode_state_vector(made, LIMITS) == clocks
