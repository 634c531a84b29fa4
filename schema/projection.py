"""Projection: a record document's content → a validated relational row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from core.errors import RecordInvalid
from schema.limits import check_values
from schema.models import Record
from schema.registry import Collection


def project(coll: Collection, record_id: str, content: Mapping[str, Any]) -> Record:
    """Validate document content (registers, texts, lists by field name) as a record.

    Unknown fields are refused, so a document carrying keys the schema does not declare never
    reaches a table; so are values over the field limits or unsafe to store (`check_values`).
    The error lists every problem, naming the field.
    """
    check_values(coll, record_id, content)
    values = {k: v for k, v in content.items() if v is not None or k in coll.kinds}
    values["id"] = record_id
    try:
        return coll.model.model_validate(values)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '<record>'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise RecordInvalid(
            f"{coll.name}/{record_id} does not validate: " + "; ".join(problems),
            problems=problems,
        ) from None


def to_row(record: Record) -> dict[str, Any]:
    """The record as JSON-compatible column values (lists stay lists, for JSON columns)."""
    return record.model_dump(mode="json")
