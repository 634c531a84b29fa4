"""Size and value limits of every field of every collection, in one table.

`check_values` runs inside `schema.project`, the one function every write path goes through
before anything is stored: a REST write and an edge's local write validate the merged record
before the document is touched, and the hub's gate projects every pushed update before commit.
So the same table holds on REST, sync and the edge. Besides sizes it refuses values no store
keeps faithfully: NUL (PostgreSQL text cannot hold it), integers beyond ±(2^53 − 1) (JavaScript
peers and the CRDT library lose or panic on them) and non-finite numbers (not JSON).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, get_args, get_origin

from annotated_types import MaxLen

from core.errors import FieldTooLarge, UnsafeValue
from schema.crdt import LIST_KINDS, CrdtKind
from schema.registry import BASE_FIELDS, COLLECTIONS, Collection

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer every peer (a JavaScript Yjs client included) represents exactly."""


class Shape(StrEnum):
    """What a field holds, which decides its default limit."""

    ID = "id"
    """A record id or a reference to one (``id``, ``…_id``)."""
    STRING = "string"
    """Any other string register."""
    TEXT = "text"
    """Long collaborative text."""
    STRINGS = "strings"
    """A list of short strings (tags, signals)."""
    OBJECTS = "objects"
    """A list of JSON objects (canvas components)."""
    OTHER = "other"
    """Numbers, booleans, dates: only the value rules apply."""


@dataclass(frozen=True, slots=True)
class FieldLimit:
    """Bounds of one field; None: not applicable to its shape."""

    chars: int | None = None
    """Characters of a string."""
    items: int | None = None
    """Elements of a list."""
    item_chars: int | None = None
    """Characters of each string element."""
    item_bytes: int | None = None
    """Bytes of each object element, as compact JSON."""
    keys: int | None = None
    """Keys of each object, at any depth (keys count as strings: ``item_chars`` each)."""


DEFAULTS: Mapping[Shape, FieldLimit] = {
    Shape.ID: FieldLimit(chars=64),
    Shape.STRING: FieldLimit(chars=500),
    Shape.TEXT: FieldLimit(chars=20_000),
    Shape.STRINGS: FieldLimit(items=100, item_chars=64),
    Shape.OBJECTS: FieldLimit(items=200, item_bytes=512 * 1024, keys=64, item_chars=64),
    Shape.OTHER: FieldLimit(),
}
"""Each shape's limit; a model's own ``max_length`` on a string field replaces ``chars``."""

OVERRIDES: Mapping[tuple[str, str], FieldLimit] = {
    ("qd_scores", "signals"): FieldLimit(items=50, item_chars=64),
    ("perception_sessions", "signals"): FieldLimit(items=50, item_chars=64),
}
"""(collection, field) → a limit other than its shape's default."""


def shape_of(coll: Collection, name: str) -> Shape:
    """The shape of field ``name`` of ``coll``."""
    if name in BASE_FIELDS or name.endswith("_id"):
        return Shape.ID
    kind = coll.kinds[name]
    if kind is CrdtKind.TEXT:
        return Shape.TEXT
    annotation = coll.model.model_fields[name].annotation
    if kind in LIST_KINDS:
        (element,) = get_args(annotation) or (Any,)
        return Shape.STRINGS if element is str else Shape.OBJECTS
    options = get_args(annotation) if get_origin(annotation) is not None else (annotation,)
    if any(isinstance(o, type) and issubclass(o, str) for o in options):
        return Shape.STRING
    return Shape.OTHER


@cache
def limits_of(coll: Collection) -> Mapping[str, FieldLimit]:
    """The limit of every field of ``coll`` (``id`` included), as `LIMITS` lists it."""
    out: dict[str, FieldLimit] = {}
    for name, info in coll.model.model_fields.items():
        limit = OVERRIDES.get((coll.name, name)) or DEFAULTS[shape_of(coll, name)]
        declared = [m.max_length for m in info.metadata if isinstance(m, MaxLen)]
        if declared and limit.chars is not None:
            limit = FieldLimit(chars=min(declared))
        out[name] = limit
    return out


LIMITS: Mapping[str, Mapping[str, FieldLimit]] = {
    name: limits_of(coll) for name, coll in COLLECTIONS.items()
}
"""collection → field → limit: the table (docs/protocol.md shows it, from `markdown_table`)."""


def check_values(coll: Collection, record_id: str, content: Mapping[str, Any]) -> None:
    """Refuse content over a field's limit (`FieldTooLarge`) or holding a value no store keeps
    faithfully (`UnsafeValue`), naming every field at fault."""
    limits = limits_of(coll)
    too_large: list[str] = []
    unsafe: list[str] = []
    for name, value in (("id", record_id), *content.items()):
        limit = limits.get(name)
        if limit is None or value is None:
            continue  # not a field (the model refuses it), or nothing to check
        if type(value) is str and "\x00" not in value and (
                limit.chars is None or len(value) <= limit.chars):
            continue  # the common case, without the walks below
        too_large += (f"{name}: {p}" for p in _size_problems(value, limit))
        unsafe += (f"{name}: {p}" for p in _value_problems(value))
    where = f"{coll.name}/{record_id[:64]}"
    if unsafe:
        raise UnsafeValue(f"{where} holds unsafe values: " + "; ".join(unsafe[:5]),
                          problems=unsafe)
    if too_large:
        raise FieldTooLarge(f"{where} exceeds field limits: " + "; ".join(too_large[:5]),
                            problems=too_large)


def _size_problems(value: Any, limit: FieldLimit) -> Iterator[str]:
    if isinstance(value, str):
        if limit.chars is not None and len(value) > limit.chars:
            yield f"{len(value)} characters exceed {limit.chars}"
        return
    if not isinstance(value, list):
        return
    if limit.items is not None and len(value) > limit.items:
        yield f"{len(value)} elements exceed {limit.items}"
        return  # do not measure every element of an oversized list
    for n, element in enumerate(value):
        if isinstance(element, str):
            if limit.item_chars is not None and len(element) > limit.item_chars:
                yield f"element {n}: {len(element)} characters exceed {limit.item_chars}"
        elif isinstance(element, dict | list):
            yield from (f"element {n}: {p}" for p in _object_problems(element, limit))


def _object_problems(element: dict[str, Any] | list[Any], limit: FieldLimit) -> Iterator[str]:
    if limit.item_bytes is not None:
        try:
            size = len(json.dumps(element, separators=(",", ":"), ensure_ascii=False).encode())
        except (TypeError, ValueError):
            size = 0  # not JSON: the value rules name why
        if size > limit.item_bytes:
            yield f"{size} bytes of JSON exceed {limit.item_bytes}"
            return
    for node in _nodes(element):
        if isinstance(node, dict):
            if limit.keys is not None and len(node) > limit.keys:
                yield f"an object of {len(node)} keys exceeds {limit.keys}"
            if limit.item_chars is not None and any(len(k) > limit.item_chars for k in node):
                yield f"a key longer than {limit.item_chars} characters"


def _value_problems(value: Any) -> Iterator[str]:
    for node in _nodes(value):
        if isinstance(node, str):
            if "\x00" in node:
                yield "a NUL character (\\x00)"
        elif isinstance(node, dict):
            if any("\x00" in key for key in node):
                yield "a NUL character (\\x00) in a key"
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int):
            if abs(node) > MAX_SAFE_INTEGER:
                yield f"an integer beyond ±{MAX_SAFE_INTEGER} (2^53 − 1)"
        elif isinstance(node, float):
            if not math.isfinite(node):
                yield "a non-finite number"
            elif abs(node) > MAX_SAFE_INTEGER:
                yield f"a number beyond ±{MAX_SAFE_INTEGER} (2^53 − 1)"


def _nodes(value: Any) -> Iterator[Any]:
    """``value`` and everything nested in it (lists, dict values), iteratively."""
    stack = [value]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


_SHAPE_FIELDS = {
    Shape.ID: "`id` and every `…_id` field",
    Shape.STRING: "every other string field (enums included)",
    Shape.TEXT: "long text (notes, body, description, narrative)",
    Shape.STRINGS: "lists of strings (tags, signals)",
    Shape.OBJECTS: "lists of objects (canvas components: a table holds its rows)",
}


def markdown_table() -> str:
    """The table as Markdown: each shape's default, then every field with a limit of its own."""
    rows = ["| fields | limit |", "| --- | --- |"]
    rows += [f"| {what} | {_describe(DEFAULTS[shape])} |" for shape, what in _SHAPE_FIELDS.items()]
    rows += ["", "| collection | field | its own limit |", "| --- | --- | --- |"]
    for name, coll in COLLECTIONS.items():
        for field, limit in limits_of(coll).items():
            if limit != DEFAULTS[shape_of(coll, field)]:
                rows.append(f"| {name} | {field} | {_describe(limit)} |")
    return "\n".join(rows)


def _describe(limit: FieldLimit) -> str:
    parts = []
    if limit.chars is not None:
        parts.append(f"≤ {limit.chars:,} characters")
    if limit.items is not None:
        parts.append(f"≤ {limit.items:,} elements")
    if limit.item_bytes is not None:
        parts.append(f"each ≤ {limit.item_bytes:,} bytes of JSON, ≤ {limit.keys} keys per "
                     f"object, keys ≤ {limit.item_chars} characters")
    elif limit.item_chars is not None:
        parts.append(f"each ≤ {limit.item_chars} characters")
    return ", ".join(parts)
