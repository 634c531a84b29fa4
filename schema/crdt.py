"""Which CRDT type holds each field of a record document."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel


class CrdtKind(StrEnum):
    """Register: one value in the root Map "fields" (per-field last writer wins by Yjs rules).
    Text: a root Text named after the field (concurrent edits interleave).
    List: a root Array named after the field (concurrent inserts interleave)."""

    REGISTER = "register"
    TEXT = "text"
    LIST = "list"


FIELDS_ROOT = "fields"
"""Name of the root Map holding every register of a record document."""

LongText = Annotated[str, CrdtKind.TEXT]
"""Free text edited collaboratively (notes, transcripts, message bodies)."""


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
