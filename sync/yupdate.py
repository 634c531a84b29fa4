"""A strict, pure-Python decoder of the Yjs update format v1, limited to what record documents use.

Untrusted CRDT bytes go through `decode_update` before pycrdt ever sees them: the decoder bounds
size, counts, string lengths and nesting depth, refuses every construct the record layout never
uses (legacy JSON, binary, embeds, formats, nested types, subdocuments, skips, undefined or binary
Any values) and every shape known to crash or mislead the library (a client twice, zero-length
structs, varints past 53 bits, trailing bytes). Each refusal is a `ProtocolError` whose ``code``
is a stable reason code; docs/yjs-update-format.md lists them all.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from typing import Any, NamedTuple

from core.errors import CausalityError, FrameTooLarge, MalformedFrame, UnsafeUpdate
from core.settings import SyncLimits
from sync._lib0 import MAX_SAFE_INTEGER, Lib0Reader

_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_CONTENT_MASK = 0x1F
_REF_GC = 0
_REF_SKIP = 10
_REFUSED_CONTENT = {
    2: ("content_json", "legacy JSON content"),
    3: ("content_binary", "binary content"),
    5: ("content_embed", "embed content"),
    6: ("content_format", "format content"),
    7: ("content_type", "nested shared type (incl. XML) content"),
    9: ("content_doc", "subdocument content"),
}

_ANY_UNDEFINED = 127
_ANY_NULL = 126
_ANY_VARINT = 125
_ANY_FLOAT32 = 124
_ANY_FLOAT64 = 123
_ANY_BIGINT = 122
_ANY_FALSE = 121
_ANY_TRUE = 120
_ANY_STRING = 119
_ANY_OBJECT = 118
_ANY_ARRAY = 117
_ANY_BINARY = 116
_ANY_CONTAINERS = frozenset((_ANY_OBJECT, _ANY_ARRAY))


class ID(NamedTuple):
    """A Yjs struct id: the authoring client and the logical clock of one unit."""

    client: int
    clock: int


class StructKind(StrEnum):
    """What a struct is on the wire (Skip structs are refused, so they never appear)."""

    ITEM = "item"
    GC = "gc"


class ContentKind(IntEnum):
    """The item content refs the decoder accepts; every other ref is refused."""

    DELETED = 1
    STRING = 4
    ANY = 8


_ACCEPTED_CONTENT = frozenset(ContentKind)


@dataclass(frozen=True, slots=True)
class Struct:
    """One decoded struct; ``length`` is in clock units (UTF-16 code units for strings)."""

    kind: StructKind
    client: int
    clock: int
    length: int
    content: ContentKind | None = None
    origin: ID | None = None
    right_origin: ID | None = None
    parent: str | None = None
    """The root type's name, present only when the item has neither origin."""
    parent_sub: str | None = None
    """The map key, present only with an explicit parent."""
    values: tuple[Any, ...] = ()
    """ContentAny values (JSON-compatible Python values)."""
    text: str | None = None
    """ContentString text."""

    @property
    def end(self) -> int:
        """The clock just after this struct."""
        return self.clock + self.length


@dataclass(frozen=True, slots=True)
class DecodedUpdate:
    """A validated v1 update: structs in wire order, clock range per client, the delete set."""

    structs: tuple[Struct, ...]
    clients: Mapping[int, tuple[int, int]]
    """client → (first clock, clock after the last struct)."""
    delete_set: Mapping[int, tuple[tuple[int, int], ...]]
    """client → (clock, length) ranges, as on the wire."""
    limits: SyncLimits
    """The bounds it was decoded under (checks reuse ``max_structs_per_key``)."""


class Placement(NamedTuple):
    """Where an item lives: its root type and, for a map entry, its key."""

    root: str
    key: str | None


class Unplaced(Enum):
    """Why a struct has no `Placement`."""

    COLLECTED = "collected"
    """A GC struct, or an item attached to a collected one: Yjs turns it into GC."""
    UNKNOWN = "unknown"
    """It refers to an id outside the update that the lookup does not hold."""


Where = Placement | Unplaced
Lookup = Callable[[ID], Where]


class _Frame:
    """One open Any container while decoding iteratively."""

    __slots__ = ("container", "remaining")

    def __init__(self, container: list[Any] | dict[str, Any], remaining: int) -> None:
        self.container = container
        self.remaining = remaining


class _Reader(Lib0Reader):
    """`Lib0Reader` with a distinct reason code for each failure and bounded strings."""

    __slots__ = ("_limits",)

    def __init__(self, data: bytes, limits: SyncLimits) -> None:
        super().__init__(data)
        self._limits = limits

    def read_u8(self) -> int:
        if self.at_end():
            raise MalformedFrame("update truncated: expected a byte", code="truncated")
        return super().read_u8()

    def read_bytes(self, length: int) -> bytes:
        if length > self.remaining:
            raise MalformedFrame(
                f"update truncated: expected {length} bytes, {self.remaining} left",
                code="truncated",
            )
        return super().read_bytes(length)

    def read_var_uint(self) -> int:
        try:
            return super().read_var_uint()
        except MalformedFrame as exc:
            if exc.code == "truncated":
                raise
            raise MalformedFrame(str(exc), code="varint_overflow") from exc

    def read_var_int(self) -> int:
        try:
            return super().read_var_int()
        except MalformedFrame as exc:
            if exc.code == "truncated":
                raise
            raise MalformedFrame(str(exc), code="varint_overflow") from exc

    def read_string(self) -> str:
        """A var string of at most ``max_string_bytes`` bytes of valid UTF-8."""
        length = self.read_var_uint()
        if length > self._limits.max_string_bytes:
            raise FrameTooLarge(
                f"string of {length} bytes exceeds {self._limits.max_string_bytes}",
                code="string_too_large",
            )
        raw = self.read_bytes(length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFrame("invalid UTF-8 in string", code="bad_utf8") from exc

    def read_id(self) -> ID:
        return ID(self.read_var_uint(), self.read_var_uint())

    def read_any(self) -> Any:
        """One lib0 Any value, decoded with an explicit stack bounded by ``max_nesting_depth``."""
        tag = self.read_u8()
        if tag not in _ANY_CONTAINERS:
            return self._read_scalar(tag)
        root: Any = {} if tag == _ANY_OBJECT else []
        stack = [_Frame(root, self.read_var_uint())]
        while stack:
            frame = stack[-1]
            if frame.remaining == 0:
                stack.pop()
                continue
            frame.remaining -= 1
            container = frame.container
            key = self.read_string() if isinstance(container, dict) else ""
            tag = self.read_u8()
            if tag in _ANY_CONTAINERS:
                if len(stack) >= self._limits.max_nesting_depth:
                    raise FrameTooLarge(
                        f"Any value nested deeper than {self._limits.max_nesting_depth}",
                        code="too_deep",
                    )
                value: Any = {} if tag == _ANY_OBJECT else []
                stack.append(_Frame(value, self.read_var_uint()))
            else:
                value = self._read_scalar(tag)
            if isinstance(container, dict):
                container[key] = value
            else:
                container.append(value)
        return root

    def _read_scalar(self, tag: int) -> Any:
        if tag == _ANY_NULL:
            return None
        if tag == _ANY_TRUE:
            return True
        if tag == _ANY_FALSE:
            return False
        if tag == _ANY_STRING:
            return self.read_string()
        if tag == _ANY_VARINT:
            return self.read_var_int()
        if tag == _ANY_BIGINT:
            return self.read_i64()
        if tag in (_ANY_FLOAT32, _ANY_FLOAT64):
            number = self.read_f32() if tag == _ANY_FLOAT32 else self.read_f64()
            if not math.isfinite(number):
                raise UnsafeUpdate("non-finite number in an Any value", code="non_finite_number")
            return number
        if tag == _ANY_UNDEFINED:
            raise UnsafeUpdate("undefined in an Any value", code="any_undefined")
        if tag == _ANY_BINARY:
            raise UnsafeUpdate("binary in an Any value", code="any_binary")
        raise MalformedFrame(f"unknown Any tag {tag}", code="bad_any_tag")


def decode_update(data: bytes, limits: SyncLimits, *, resolve: bool = True) -> DecodedUpdate:
    """Decode and validate a Yjs v1 update; any refusal is a typed `ProtocolError` with a code.

    ``resolve=False`` skips placing each item (origin cycles, per-key bounds): only for callers
    that place them strictly right after (`resolve_placements`), or for bytes our own validated
    replicas produced, where only the causal order is in question."""
    if len(data) > limits.max_update_bytes:
        raise FrameTooLarge(
            f"update of {len(data)} bytes exceeds {limits.max_update_bytes}",
            code="update_too_large",
        )
    reader = _Reader(data, limits)
    structs: list[Struct] = []
    clients: dict[int, tuple[int, int]] = {}
    client_count = reader.read_var_uint()
    if client_count > limits.max_clients_per_update:
        raise FrameTooLarge(
            f"{client_count} clients exceed {limits.max_clients_per_update}",
            code="too_many_clients",
        )
    for _ in range(client_count):
        struct_count = reader.read_var_uint()
        if struct_count == 0:
            raise MalformedFrame("client block without structs", code="empty_client")
        if len(structs) + struct_count > limits.max_structs_per_update:
            raise FrameTooLarge(
                f"more than {limits.max_structs_per_update} structs", code="too_many_structs"
            )
        client = reader.read_var_uint()
        if client in clients:
            raise UnsafeUpdate(f"client {client} appears twice", code="duplicate_client")
        start = clock = reader.read_var_uint()
        for _ in range(struct_count):
            struct = _read_struct(reader, client, clock)
            clock = struct.end
            if clock > MAX_SAFE_INTEGER:
                raise MalformedFrame(f"client {client} clock overflows", code="clock_overflow")
            structs.append(struct)
        clients[client] = (start, clock)
    delete_set = _read_delete_set(reader)
    if not reader.at_end():
        raise MalformedFrame(
            f"{reader.remaining} trailing bytes after the delete set", code="trailing_bytes"
        )
    update = DecodedUpdate(tuple(structs), clients, delete_set, limits)
    if resolve:
        resolve_placements(update)
    return update


def _read_struct(reader: _Reader, client: int, clock: int) -> Struct:
    info = reader.read_u8()
    ref = info & _CONTENT_MASK
    if ref in (_REF_GC, _REF_SKIP):
        if info != ref:
            raise MalformedFrame(f"info byte {info:#x} sets flags on a GC/skip", code="bad_info")
        if ref == _REF_SKIP:
            raise UnsafeUpdate("skip structs are refused: send a contiguous diff", code="skip")
        return Struct(StructKind.GC, client, clock, _read_length(reader))
    if ref in _REFUSED_CONTENT:
        code, what = _REFUSED_CONTENT[ref]
        raise UnsafeUpdate(f"{what} is not allowed", code=code)
    if ref not in _ACCEPTED_CONTENT:
        raise UnsafeUpdate(f"unknown content ref {ref}", code="content_unknown")
    origin = reader.read_id() if info & _HAS_ORIGIN else None
    right_origin = reader.read_id() if info & _HAS_RIGHT_ORIGIN else None
    for ref_id in (origin, right_origin):
        if ref_id is not None and ref_id.client == client and ref_id.clock >= clock:
            raise CausalityError(
                f"item {client}:{clock} refers to its own future clock {ref_id.clock}",
                code="forward_origin",
            )
    parent = parent_sub = None
    if origin is None and right_origin is None:
        parent = _read_parent(reader)
        if info & _HAS_PARENT_SUB:
            parent_sub = reader.read_string()
    kind = ContentKind(ref)
    values: tuple[Any, ...] = ()
    text = None
    if kind is ContentKind.STRING:
        text = reader.read_string()
        length = len(text.encode("utf-16-le")) // 2
        if length == 0:
            raise UnsafeUpdate("empty string content", code="zero_length")
    elif kind is ContentKind.ANY:
        count = _read_length(reader)
        values = tuple(reader.read_any() for _ in range(count))
        length = len(values)
    else:
        length = _read_length(reader)
    return Struct(
        StructKind.ITEM,
        client,
        clock,
        length,
        content=kind,
        origin=origin,
        right_origin=right_origin,
        parent=parent,
        parent_sub=parent_sub,
        values=values,
        text=text,
    )


def _read_length(reader: _Reader) -> int:
    length = reader.read_var_uint()
    if length == 0:
        raise UnsafeUpdate("zero-length struct", code="zero_length")
    return length


def _read_parent(reader: _Reader) -> str:
    flag = reader.read_var_uint()
    if flag == 1:
        return reader.read_string()
    if flag == 0:
        raise UnsafeUpdate("item parented by another item (a nested type)", code="parent_item")
    raise MalformedFrame(f"parent info {flag} is neither 0 nor 1", code="bad_parent_info")


def _read_delete_set(reader: _Reader) -> dict[int, tuple[tuple[int, int], ...]]:
    delete_set: dict[int, tuple[tuple[int, int], ...]] = {}
    for _ in range(reader.read_var_uint()):
        client = reader.read_var_uint()
        if client in delete_set:
            raise UnsafeUpdate(
                f"client {client} appears twice in the delete set", code="duplicate_delete_client"
            )
        ranges = []
        for _ in range(reader.read_var_uint()):
            clock = reader.read_var_uint()
            length = reader.read_var_uint()
            if length == 0:
                raise UnsafeUpdate("zero-length delete range", code="empty_delete_range")
            if clock + length > MAX_SAFE_INTEGER:
                raise MalformedFrame("delete range overflows the clock", code="clock_overflow")
            ranges.append((clock, length))
        delete_set[client] = tuple(ranges)
    return delete_set


def decode_state_vector(data: bytes, limits: SyncLimits) -> dict[int, int]:
    """Decode a Yjs state vector (client → next clock), refusing duplicates and trailing bytes."""
    if len(data) > limits.max_update_bytes:
        raise FrameTooLarge(
            f"state vector of {len(data)} bytes exceeds {limits.max_update_bytes}",
            code="update_too_large",
        )
    reader = _Reader(data, limits)
    state: dict[int, int] = {}
    for _ in range(reader.read_var_uint()):
        client = reader.read_var_uint()
        if client in state:
            raise MalformedFrame(
                f"client {client} twice in a state vector", code="duplicate_client"
            )
        state[client] = reader.read_var_uint()
    if not reader.at_end():
        raise MalformedFrame("trailing bytes after a state vector", code="trailing_bytes")
    return state


def trusted_state_vector(data: bytes) -> dict[int, int]:
    """Decode a state vector pycrdt itself made (client → next clock) with no checks: five
    times faster than `decode_state_vector`, which a document's vector, growing with its
    writers, met once per applied update. Never for bytes from outside."""
    values: list[int] = []
    append = values.append
    value = shift = 0
    for byte in data:
        if byte & 0x80:
            value |= (byte & 0x7F) << shift
            shift += 7
        else:
            append(value | (byte << shift))
            value = shift = 0
    return dict(zip(values[1::2], values[2::2], strict=True))


def _unknown(_: ID) -> Where:
    return Unplaced.UNKNOWN


def resolve_placements(
    update: DecodedUpdate, lookup: Lookup = _unknown, *, strict: bool = False
) -> tuple[Where, ...]:
    """Where each struct of ``update`` lives, in wire order, following origins as Yjs does.

    An item without an explicit parent takes its origin's placement, or its right origin's when
    the origin is collected. Origins are looked up in the update itself, then via ``lookup``.
    With ``strict`` an origin found nowhere is a `CausalityError` ("missing_origin") and so is
    an item attached only to GC structs ("collected_origin"); without, such items are
    `Unplaced.UNKNOWN` or `Unplaced.COLLECTED`. Origin cycles and items whose two origins
    disagree are refused, and so are more than ``max_structs_per_key`` items on one key or root.
    """
    table = _StructTable(update.structs)
    memo: dict[int, Where] = {}
    visiting: set[int] = set()
    for first in range(len(update.structs)):
        stack = [first]
        while stack:
            index = stack[-1]
            if index in memo:
                stack.pop()
                continue
            struct = update.structs[index]
            targets = [table.find(ref) for ref in (struct.origin, struct.right_origin)]
            pending = [t for t in targets if t is not None and t not in memo]
            if pending:
                visiting.add(index)
                for target in pending:
                    if target in visiting:
                        raise CausalityError(
                            f"origin cycle through item {struct.client}:{struct.clock}",
                            code="origin_cycle",
                        )
                    stack.append(target)
                continue
            left, right = (
                _target_where(ref, target, memo, lookup)
                for ref, target in zip((struct.origin, struct.right_origin), targets, strict=True)
            )
            memo[index] = _combine(struct, left, right, strict)
            stack.pop()
    placements = tuple(memo[i] for i in range(len(update.structs)))
    _bound_per_key(placements, update.limits.max_structs_per_key)
    return placements


class _StructTable:
    """Finds the struct of an update that contains a given id."""

    __slots__ = ("_by_client", "_structs")

    def __init__(self, structs: tuple[Struct, ...]) -> None:
        self._structs = structs
        self._by_client: dict[int, tuple[list[int], list[int]]] = {}
        for index, struct in enumerate(structs):
            starts, indices = self._by_client.setdefault(struct.client, ([], []))
            starts.append(struct.clock)
            indices.append(index)

    def find(self, ref: ID | None) -> int | None:
        if ref is None or ref.client not in self._by_client:
            return None
        starts, indices = self._by_client[ref.client]
        pos = bisect_right(starts, ref.clock) - 1
        if pos < 0 or ref.clock >= self._structs[indices[pos]].end:
            return None
        return indices[pos]


def _target_where(
    ref: ID | None, target: int | None, memo: dict[int, Where], lookup: Lookup
) -> Where | None:
    if ref is None:
        return None
    if target is not None:
        return memo[target]
    return lookup(ref)


def _combine(struct: Struct, left: Where | None, right: Where | None, strict: bool) -> Where:
    """The placement of ``struct`` given what its origin (left) and right origin resolved to."""
    if struct.kind is StructKind.GC:
        return Unplaced.COLLECTED
    if struct.parent is not None:
        return Placement(struct.parent, struct.parent_sub)
    if Unplaced.UNKNOWN in (left, right):
        if strict:
            raise CausalityError(
                f"item {struct.client}:{struct.clock} refers to an item that does not exist",
                code="missing_origin",
            )
        return Unplaced.UNKNOWN
    if isinstance(left, Placement):
        if isinstance(right, Placement) and right != left:
            raise CausalityError(
                f"item {struct.client}:{struct.clock} sits between two different parents",
                code="origin_conflict",
            )
        return left
    if isinstance(right, Placement):
        return right
    if strict:
        raise CausalityError(
            f"item {struct.client}:{struct.clock} is attached only to collected (GC) structs",
            code="collected_origin",
        )
    return Unplaced.COLLECTED


def _bound_per_key(placements: tuple[Where, ...], limit: int) -> None:
    if len(placements) <= limit:  # no key can hold more than the whole update
        return
    counts = Counter(p for p in placements if isinstance(p, Placement))
    for placement, count in counts.items():
        if count > limit:
            where = placement.root if placement.key is None else f"{placement.root}.{placement.key}"
            raise FrameTooLarge(f"{count} items on {where} exceed {limit}", code="too_many_on_key")
