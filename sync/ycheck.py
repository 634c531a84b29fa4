"""Checks on a decoded Yjs update against the receiver's state, and what the update changes.

`decode_update` (sync/yupdate.py) proves an update is well formed and safe to parse; the checks
here prove it fits the collection's layout (`check_schema`), continues exactly what the receiver
holds and is authored only by the pushing device (`check_causality`), and say which map keys,
text and list ranges it sets or deletes (`effects`) for the permission rules.
See docs/yjs-update-format.md for every reason code.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from core.errors import CausalityError, UnsafeUpdate
from core.settings import SyncLimits
from sync._lib0 import MAX_SAFE_INTEGER
from sync.yupdate import (
    ID,
    ContentKind,
    DecodedUpdate,
    Placement,
    Struct,
    StructKind,
    Unplaced,
    Where,
    decode_update,
    resolve_placements,
)


class RootKind(StrEnum):
    """The shared type of a root: a Map of registers, a Text, or an Array; a retired root (an
    Array of a former layout) may only lose items."""

    MAP = "map"
    TEXT = "text"
    ARRAY = "array"
    RETIRED = "retired"


_CONTENT_OF = {
    RootKind.MAP: ContentKind.ANY,
    RootKind.TEXT: ContentKind.STRING,
    RootKind.ARRAY: ContentKind.ANY,
    RootKind.RETIRED: ContentKind.DELETED,
}
"""The live content kind each root kind holds (ContentDeleted fits every root)."""


class _Segment(NamedTuple):
    start: int
    end: int
    where: Where
    content: ContentKind | None


class OriginIndex:
    """What the receiver holds, by id range: each range's root and map key, what is deleted,
    and where its text holds surrogate pairs."""

    __slots__ = ("_deleted", "_pairs", "_segments", "_starts", "_state")

    def __init__(self) -> None:
        """An empty index: the receiver holds nothing yet."""
        self._segments: dict[int, list[_Segment]] = {}
        self._starts: dict[int, list[int]] = {}
        self._deleted: dict[int, list[tuple[int, int]]] = {}
        self._state: dict[int, int] = {}
        self._pairs: dict[int, list[int]] = {}
        """client → clocks (ascending) of held text units that open a surrogate pair."""

    @classmethod
    def from_state(cls, state: bytes, limits: SyncLimits) -> OriginIndex:
        """Index the receiver's full state (``doc.get_update()``), decoded under ``limits``.

        The held state of a long-lived document may exceed the per-update bounds (a text edited
        for months has thousands of items), so pass snapshot-sized limits here.
        """
        decoded = decode_update(state, limits, resolve=False)  # placed strictly just below
        index = cls()
        placements = resolve_placements(decoded, strict=True)
        for struct, where in zip(decoded.structs, placements, strict=True):
            index._add(struct, where)
        index._state = {client: end for client, (_, end) in decoded.clients.items()}
        index._deleted = {c: _merge(r) for c, r in decoded.delete_set.items()}
        return index

    def _add(self, struct: Struct, where: Where) -> None:
        """Index one struct that continues its client's held clocks."""
        self._segments.setdefault(struct.client, []).append(
            _Segment(struct.clock, struct.end, where, struct.content))
        self._starts.setdefault(struct.client, []).append(struct.clock)
        if struct.text is not None:
            pairs = _pair_starts(struct)
            if pairs:
                self._pairs.setdefault(struct.client, []).extend(pairs)

    def extend(self, inspection: Inspection) -> None:
        """Add an update the receiver has just applied: it passed `inspect` against this index
        (so each of its clients continues exactly where the index ends)."""
        decoded = inspection.decoded
        for struct, where in zip(decoded.structs, inspection.placements, strict=True):
            self._add(struct, where)
        for client, (_, end) in decoded.clients.items():
            self._state[client] = end
        for client, ranges in decoded.delete_set.items():
            spans = self._deleted.setdefault(client, [])
            for lo, hi in _merge(tuple(ranges)):  # each in place: no re-merge of what is held
                _add_span(spans, lo, hi)

    @property
    def entries(self) -> int:
        """How many held ranges it indexes (what its memory grows with)."""
        return sum(len(segments) for segments in self._segments.values())

    @property
    def state_vector(self) -> Mapping[int, int]:
        """client → next clock, as held."""
        return self._state

    def lookup(self, ref: ID) -> Where:
        """The placement of the held item containing ``ref``; `Unplaced.UNKNOWN` if not held."""
        segment = self._segment_at(ref.client, ref.clock)
        return Unplaced.UNKNOWN if segment is None else segment.where

    def _live_overlaps(self, client: int, start: int, end: int) -> Iterator[tuple[_Segment, int]]:
        """Held segments within ``[start, end)`` that are not deleted yet, with live units (a
        segment may come once per live run it holds). Only the live runs are walked: an update
        restating deletions the receiver holds (a whole delete set) costs no walk."""
        starts = self._starts.get(client, [])
        segments = self._segments.get(client, [])
        for run_start, run_end in _subtract(start, end, self._deleted.get(client, [])):
            pos = max(bisect_right(starts, run_start) - 1, 0)
            while pos < len(segments) and segments[pos].start < run_end:
                segment = segments[pos]
                lo, hi = max(segment.start, run_start), min(segment.end, run_end)
                if lo < hi:
                    yield segment, hi - lo
                pos += 1

    def opens_live_pair(self, client: int, clock: int) -> bool:
        """True when held unit ``client:clock`` is the first half of a surrogate pair of
        which a half is not deleted yet (splitting deleted text changes nothing)."""
        pairs = self._pairs.get(client)
        if not pairs:
            return False
        pos = bisect_right(pairs, clock) - 1
        if pos < 0 or pairs[pos] != clock:
            return False
        return bool(_subtract(clock, clock + 2, self._deleted.get(client, [])))

    def is_deleted(self, client: int, clock: int) -> bool:
        """True when held unit ``client:clock`` is deleted."""
        return _covers(self._deleted.get(client, []), clock)

    def _segment_at(self, client: int, clock: int) -> _Segment | None:
        starts = self._starts.get(client)
        if not starts:
            return None
        pos = bisect_right(starts, clock) - 1
        if pos < 0:
            return None
        segment = self._segments[client][pos]
        return segment if clock < segment.end else None


@dataclass(frozen=True, slots=True)
class UpdateEffects:
    """What applying an update changes, by root (only roots it touches appear).

    Text amounts are UTF-16 code units, Yjs' own length; list amounts are values.
    """

    map_set: Mapping[str, Mapping[str, Any]]
    """root → key → the value this update leaves on the key (last item of its own chain)."""
    map_deleted: Mapping[str, frozenset[str]]
    """root → keys this update leaves without a value."""
    text_inserted: Mapping[str, tuple[str, ...]]
    text_deleted: Mapping[str, int]
    array_inserted: Mapping[str, tuple[Any, ...]]
    array_deleted: Mapping[str, int]

    def keys(self, root: str) -> frozenset[str]:
        """Map keys of ``root`` this update sets or deletes."""
        return frozenset(self.map_set.get(root, {})) | self.map_deleted.get(root, frozenset())


def check_schema(
    decoded: DecodedUpdate, roots: Mapping[str, RootKind], *, index: OriginIndex | None = None
) -> None:
    """Only declared roots, and content that fits each root's kind.

    Without ``index`` only items placed by the update itself are checked; with it, every item
    is, and an origin that exists nowhere is a `CausalityError`.
    """
    _check_schema(decoded, roots, _placements(decoded, index))


def check_causality(
    decoded: DecodedUpdate, held: Mapping[int, int], bound_clients: Collection[int] | None
) -> None:
    """Only the device's own client ids, each continuing exactly the receiver's state vector
    ``held``; deletes only of clocks that exist. An empty update (no struct, no delete) is
    ``already_applied``: it holds nothing the receiver lacks, so it is acknowledged, never
    committed or sent on."""
    if not decoded.clients and not decoded.delete_set:
        raise CausalityError("the update is empty: nothing to apply", code="already_applied")
    foreign = (sorted(set(decoded.clients) - set(bound_clients))
               if bound_clients is not None else [])
    if foreign:
        raise CausalityError(
            f"client id(s) {foreign} are not bound to this device", code="foreign_client"
        )
    fresh = stale = False
    for client, (start, end) in decoded.clients.items():
        have = held.get(client, 0)
        if start > have:
            raise CausalityError(
                f"client {client} starts at clock {start}, {have} held", code="gap"
            )
        if start < have < end:
            raise CausalityError(
                f"client {client} re-sends clocks {start}..{have - 1} with new ones",
                code="overlap",
            )
        stale = stale or start < have
        fresh = fresh or start == have
    if stale:
        if fresh:
            raise CausalityError("update mixes held and new client blocks", code="overlap")
        raise CausalityError("every struct of this update is already held", code="already_applied")
    for client, ranges in decoded.delete_set.items():
        known = max(held.get(client, 0), decoded.clients.get(client, (0, 0))[1])
        for clock, length in ranges:
            if clock + length > known:
                raise CausalityError(
                    f"delete of client {client} clocks {clock}..{clock + length - 1}, "
                    f"only {known} exist",
                    code="delete_unknown",
                )


def effects(decoded: DecodedUpdate, index: OriginIndex) -> UpdateEffects:
    """The map keys, text and list ranges ``decoded`` sets or deletes, given what is held."""
    return _effects(decoded, index, _placements(decoded, index))


class Inspection(NamedTuple):
    """An update that passed every check: decoded, each struct placed, and what it changes."""

    decoded: DecodedUpdate
    placements: tuple[Where, ...]
    effects: UpdateEffects


def inspect(
    data: bytes,
    *,
    limits: SyncLimits,
    roots: Mapping[str, RootKind],
    held: Mapping[int, int],
    bound_clients: Collection[int] | None,
    index: OriginIndex,
) -> Inspection:
    """Decode ``data`` and run every check; refusals are `ProtocolError`. ``bound_clients``
    None: any client (an update read back from the hub's own log)."""
    decoded = decode_update(data, limits, resolve=False)  # placed strictly below
    check_causality(decoded, held, bound_clients)
    placements = _placements(decoded, index)
    _check_schema(decoded, roots, placements)
    check_values(decoded)
    check_text_positions(decoded, index)
    return Inspection(decoded, placements, _effects(decoded, index, placements))


def check_values(decoded: DecodedUpdate) -> None:
    """No NUL character in any string (root names, map keys, text, values, object keys) and no
    integer beyond ±(2^53 − 1): PostgreSQL text cannot hold NUL, and such integers lose
    precision in JavaScript peers or panic the CRDT library."""
    for struct in decoded.structs:
        at = f"item {struct.client}:{struct.clock}"
        for text in (struct.parent, struct.parent_sub, struct.text):
            if text is not None and "\x00" in text:
                raise UnsafeUpdate(f"{at} holds a NUL character", code="nul_character")
        stack: list[Any] = list(struct.values)
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                if "\x00" in value:
                    raise UnsafeUpdate(f"{at} holds a NUL character", code="nul_character")
            elif isinstance(value, dict):
                if any("\x00" in key for key in value):
                    raise UnsafeUpdate(f"{at} holds a NUL character in an object key",
                                       code="nul_character")
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, int) and not isinstance(value, bool) and (
                    abs(value) > MAX_SAFE_INTEGER):
                raise UnsafeUpdate(f"{at} holds the integer {value}, beyond ±(2^53 − 1)",
                                   code="unsafe_integer")


def check_text_positions(decoded: DecodedUpdate, index: OriginIndex) -> None:
    """No insert origin, right origin or delete boundary between the two halves of a surrogate
    pair, in the text as held (``index``) or as this update writes it.

    Yjs counts text in UTF-16 units and yrs stores UTF-8: a split pair leaves a document that
    re-encodes differently each time and diverges between replicas. A pair already deleted
    whole may be split (it holds no text); a delete range that only restates held deletions
    is not judged again (a document stored before this rule must not refuse honest updates).
    """
    own = _OwnPairs(decoded)

    def opens_pair(client: int, clock: int) -> bool:
        return own.opens(client, clock) or index.opens_live_pair(client, clock)

    for struct in decoded.structs:
        at = f"item {struct.client}:{struct.clock}"
        if struct.origin is not None and opens_pair(*struct.origin):
            raise UnsafeUpdate(f"{at} is inserted inside a surrogate pair (after "
                               f"{struct.origin.client}:{struct.origin.clock})",
                               code="surrogate_split")
        right = struct.right_origin
        if right is not None and right.clock > 0 and opens_pair(right.client, right.clock - 1):
            raise UnsafeUpdate(f"{at} is inserted inside a surrogate pair (before "
                               f"{right.client}:{right.clock})", code="surrogate_split")
    for client, ranges in decoded.delete_set.items():
        spans = _merge(ranges)
        for start, end in spans:
            for high in (start - 1, end - 1):
                if high < 0 or not opens_pair(client, high):
                    continue
                halves = [(index.is_deleted(client, unit), _covers(spans, unit))
                          for unit in (high, high + 1)]
                newly = any(ours and not held for held, ours in halves)
                if newly and len({held or ours for held, ours in halves}) == 2:
                    raise UnsafeUpdate(
                        f"the delete of {client}:{start}..{end - 1} removes half of the "
                        f"surrogate pair at {client}:{high}", code="surrogate_split")


def _covers(spans: list[tuple[int, int]], clock: int) -> bool:
    """True when the sorted disjoint ``spans`` contain ``clock``."""
    return not _subtract(clock, clock + 1, spans)


class _OwnPairs:
    """Where the strings an update writes open surrogate pairs."""

    __slots__ = ("_pairs",)

    def __init__(self, decoded: DecodedUpdate) -> None:
        self._pairs: dict[int, set[int]] = {}
        for struct in decoded.structs:
            if struct.text is not None:
                pairs = _pair_starts(struct)
                if pairs:
                    self._pairs.setdefault(struct.client, set()).update(pairs)

    def opens(self, client: int, clock: int) -> bool:
        return clock in self._pairs.get(client, ())


def _pair_starts(struct: Struct) -> list[int]:
    """Clocks of the units of a string struct that open a surrogate pair (ascending)."""
    assert struct.text is not None
    if struct.text.isascii():
        return []
    starts = []
    clock = struct.clock
    for char in struct.text:
        if ord(char) > 0xFFFF:
            starts.append(clock)
            clock += 2
        else:
            clock += 1
    return starts


def _placements(decoded: DecodedUpdate, index: OriginIndex | None) -> tuple[Where, ...]:
    if index is None:
        return resolve_placements(decoded)
    return resolve_placements(decoded, index.lookup, strict=True)


def _check_schema(
    decoded: DecodedUpdate, roots: Mapping[str, RootKind], placements: tuple[Where, ...]
) -> None:
    for struct, where in zip(decoded.structs, placements, strict=True):
        if isinstance(where, Placement):
            kind = roots.get(where.root)
            if kind is None:
                raise UnsafeUpdate(
                    f"root {where.root!r} is not part of this document", code="unknown_root"
                )
            _check_item(struct, where, kind)


def _check_item(struct: Struct, where: Placement, kind: RootKind) -> None:
    at = f"item {struct.client}:{struct.clock} in {kind} root {where.root!r}"
    if (kind is RootKind.MAP) != (where.key is not None):
        raise UnsafeUpdate(f"{at}: map keys belong to map roots only", code="key_mismatch")
    if struct.content not in (_CONTENT_OF[kind], ContentKind.DELETED):
        raise UnsafeUpdate(f"{at}: {struct.content!r} content", code="content_mismatch")
    if kind is RootKind.MAP:
        if struct.right_origin is not None:
            raise UnsafeUpdate(f"{at}: a map entry with a right origin", code="map_right_origin")
        if struct.content is ContentKind.ANY and struct.length != 1:
            raise UnsafeUpdate(f"{at}: {struct.length} values on one key", code="map_multi_value")


def _effects(
    decoded: DecodedUpdate, index: OriginIndex, placements: tuple[Where, ...]
) -> UpdateEffects:
    removed = {client: _merge(ranges) for client, ranges in decoded.delete_set.items()}
    text_inserted: dict[str, list[str]] = defaultdict(list)
    array_inserted: dict[str, list[Any]] = defaultdict(list)
    by_key: dict[tuple[str, str], list[Struct]] = defaultdict(list)
    for struct, where in zip(decoded.structs, placements, strict=True):
        if struct.kind is StructKind.GC or not isinstance(where, Placement):
            continue
        if where.key is not None:
            by_key[where.root, where.key].append(struct)
            continue
        for lo, hi in _subtract(struct.clock, struct.end, removed.get(struct.client, [])):
            a, b = lo - struct.clock, hi - struct.clock
            if struct.text is not None:
                text_inserted[where.root].append(_utf16_slice(struct.text, a, b))
            elif struct.content is ContentKind.ANY:
                array_inserted[where.root].extend(struct.values[a:b])
    map_set: dict[str, dict[str, Any]] = defaultdict(dict)
    map_deleted: dict[str, set[str]] = defaultdict(set)
    for (root, key), items in by_key.items():
        winner = _map_winner(items)
        if winner.content is ContentKind.ANY and _is_live(winner, removed):
            map_set[root][key] = winner.values[-1]
        else:
            map_deleted[root].add(key)
    text_deleted: dict[str, int] = defaultdict(int)
    array_deleted: dict[str, int] = defaultdict(int)
    for client, ranges in removed.items():
        for start, end in ranges:
            for segment, units in index._live_overlaps(client, start, end):
                where = segment.where
                if not isinstance(where, Placement):
                    continue
                if where.key is not None:
                    if (where.root, where.key) not in by_key:
                        map_deleted[where.root].add(where.key)
                elif segment.content is ContentKind.STRING:
                    text_deleted[where.root] += units
                elif segment.content is ContentKind.ANY:
                    array_deleted[where.root] += units
    return UpdateEffects(
        map_set={root: dict(keys) for root, keys in map_set.items()},
        map_deleted={root: frozenset(keys) for root, keys in map_deleted.items()},
        text_inserted={root: tuple(parts) for root, parts in text_inserted.items()},
        text_deleted=dict(text_deleted),
        array_inserted={root: tuple(values) for root, values in array_inserted.items()},
        array_deleted=dict(array_deleted),
    )


def _map_winner(items: list[Struct]) -> Struct:
    """The last item of the update's own chain on one key: no other item names it as origin.

    Forks (two items on one origin) resolve to the higher client id, as Yjs orders them.
    """
    by_client: dict[int, list[Struct]] = defaultdict(list)
    for item in items:
        by_client[item.client].append(item)
    starts = {client: [item.clock for item in run] for client, run in by_client.items()}
    named: set[ID] = set()
    for item in items:
        if item.origin is None or item.origin.client not in by_client:
            continue
        run = by_client[item.origin.client]
        pos = bisect_right(starts[item.origin.client], item.origin.clock) - 1
        if pos >= 0 and item.origin.clock < run[pos].end:
            named.add(ID(run[pos].client, run[pos].clock))
    ends = [item for item in items if ID(item.client, item.clock) not in named]
    return max(ends, key=lambda item: (item.client, item.clock))


def _is_live(item: Struct, removed: Mapping[int, list[tuple[int, int]]]) -> bool:
    last = item.end - 1
    return not any(lo <= last < hi for lo, hi in removed.get(item.client, []))


def _merge(ranges: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """Delete-set (clock, length) ranges as sorted, disjoint [start, end) spans."""
    spans: list[tuple[int, int]] = []
    for start, end in sorted((clock, clock + length) for clock, length in ranges):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _add_span(spans: list[tuple[int, int]], lo: int, hi: int) -> None:
    """Add ``[lo, hi)`` to the sorted disjoint ``spans``, joining those it touches."""
    first = bisect_left(spans, (lo,))
    if first and spans[first - 1][1] >= lo:
        first -= 1
        lo = spans[first][0]
    last = first
    while last < len(spans) and spans[last][0] <= hi:
        hi = max(hi, spans[last][1])
        last += 1
    spans[first:last] = [(lo, hi)]


def _subtract(start: int, end: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` outside the sorted disjoint ``spans``."""
    parts = []
    cursor = start
    for n in range(max(bisect_right(spans, (start,)) - 1, 0), len(spans)):  # no copy of the rest
        lo, hi = spans[n]
        if lo >= end:
            break
        if hi > cursor:
            if lo > cursor:
                parts.append((cursor, lo))
            cursor = hi
    if cursor < end:
        parts.append((cursor, end))
    return parts


def _utf16_slice(text: str, start: int, end: int) -> str:
    """``text[start:end]`` in UTF-16 code units; a split surrogate pair becomes U+FFFD (as Yjs)."""
    encoded = text.encode("utf-16-le")
    if start == 0 and 2 * end == len(encoded):
        return text
    return encoded[2 * start : 2 * end].decode("utf-16-le", errors="replace")
