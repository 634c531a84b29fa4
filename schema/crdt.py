"""Which CRDT type holds each field of a record document."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel


class CrdtKind(StrEnum):
    """Register: one value in the root Map "fields" (per-field last writer wins by Yjs rules).
    Text: a root Text named after the field (concurrent edits interleave).
    Set: an add-wins set of strings, a root Map ``<field>.set`` with one key per member.
    Ordered: an ordered list of maps with a stable ``id``, a root Map ``<field>.list`` with one
    key per position, property and removal (see sync/lists.py for the merge rules)."""

    REGISTER = "register"
    TEXT = "text"
    SET = "set"
    ORDERED = "ordered"


FIELDS_ROOT = "fields"
"""Name of the root Map holding every register of a record document."""

LIST_KINDS = frozenset({CrdtKind.SET, CrdtKind.ORDERED})
"""The kinds whose value is a list."""

LongText = Annotated[str, CrdtKind.TEXT]
"""Free text edited collaboratively (notes, transcripts, message bodies)."""

StringSet = Annotated[list[str], CrdtKind.SET]
"""Labels without order (tags, signals): read back sorted, merged as an add-wins set."""

ElementList = Annotated[list[dict[str, Any]], CrdtKind.ORDERED]
"""Ordered maps with a stable ``id`` each (canvas components): merged by element identity."""


def list_root(field: str, kind: CrdtKind) -> str:
    """The root Map that holds a set or ordered list field."""
    return f"{field}.set" if kind is CrdtKind.SET else f"{field}.list"


def kind_of(model: type[BaseModel], field: str) -> CrdtKind:
    """The CRDT kind declared for ``field`` (register unless annotated otherwise)."""
    info = model.model_fields[field]
    for meta in info.metadata:
        if isinstance(meta, CrdtKind):
            return meta
    annotation: Any = info.annotation
    if get_origin(annotation) is Annotated:
        for meta in get_args(annotation)[1:]:
            if isinstance(meta, CrdtKind):
                return meta
    return CrdtKind.REGISTER
