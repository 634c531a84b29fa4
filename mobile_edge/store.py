"""What the mobile-edge routes need from where they run: the hub's PostgreSQL projection and
committer, or an edge's replica. Conditions are rendered here once for both SQL dialects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import TypeAdapter

from mobile_edge.inputs import HeartbeatIn
from schema import collection

Row = dict[str, Any]
Op = Literal["=", "!=", ">=", "<"]
Cond = tuple[str, Op, Any]
"""``(column, operator, value)``: one condition on a projection row (all must hold)."""
NewRecord = tuple[str, str, Row]
"""``(collection, id, values)`` of a record to create."""

_JSON_TIME = TypeAdapter(datetime)


class MobileStore(Protocol):
    """The reads and writes of one caller (a hub principal, or the device's own user)."""

    tenant_id: str
    user_id: str

    async def get(self, coll: str, record_id: str) -> Row:
        """A live record the caller may read; `NotFound` otherwise."""

    async def select(self, coll: str, where: Sequence[Cond], order: str, *, limit: int = 200,
                     offset: int = 0) -> list[Row]:
        """Live records the caller may read that meet every condition, ordered by ``order``
        (a column, ``-column`` for descending)."""

    async def create(self, records: Sequence[NewRecord]) -> list[Row]:
        """New records, all in one transaction, through the CRDT write path."""

    async def change(self, coll: str, record_id: str, values: Row) -> Row:
        """Change some fields of an existing record through the CRDT write path."""

    async def heartbeat(self, beat: HeartbeatIn) -> Row:
        """Note that a surface is alive; its session with the count of active surfaces."""


def render_where(coll_name: str, where: Sequence[Cond], order: str,
                 placeholder: Callable[[int], str], first: int) -> tuple[str, str, list[Any]]:
    """``(condition, ORDER BY, params)`` on alias ``t``; columns are checked against the model
    so no caller text reaches the SQL."""
    fields = collection(coll_name).model.model_fields
    parts, params = [], []
    for i, (column, op, value) in enumerate(where):
        if column not in fields or op not in ("=", "!=", ">=", "<"):
            raise ValueError(f"no condition {column} {op} on {coll_name}")
        parts.append(f"t.{column} {op} {placeholder(first + i)}")
        params.append(value)
    column = order.removeprefix("-")
    if column not in fields:
        raise ValueError(f"no column {column} on {coll_name}")
    direction = "DESC" if order.startswith("-") else "ASC"
    return " AND ".join(parts) or "TRUE", f"t.{column} {direction}, t.id", params


def as_text(value: Any) -> Any:
    """A parameter as the edge's projection stores it (times as their JSON text)."""
    return _JSON_TIME.dump_python(value, mode="json") if isinstance(value, datetime) else value


def as_record(coll_name: str, row: Row) -> Row:
    """A projection row as the record's JSON (the same shape from PostgreSQL and SQLite)."""
    return collection(coll_name).model.model_validate(row).model_dump(mode="json")
