"""Reads of the projection tables (one row per live record), always within the caller's tenant
and read scope. Every filter and order the routes use is named here, so no route holds SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NewType

from core.errors import NotFound
from core.identity import Principal
from hub.database import Database
from hub.scope import row_scope_sql
from mobile_edge.store import Cond, render_where
from schema import collection

Row = dict[str, Any]
Order = NewType("Order", str)
"""An ORDER BY clause on alias ``t``; the named ones below are the only ones routes use."""
Columns = NewType("Columns", str)
"""A select list on alias ``t`` (`columns`, or a named one below)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """A condition on alias ``t`` whose parameters start at ``$4``."""

    sql: str
    params: tuple[Any, ...] = ()


ALL = Filter("TRUE")
BY_ID = Order("id")
BY_NAME = Order("t.name, t.id")
BY_LEVEL = Order("t.level DESC, t.id")
BY_FULL_NAME = Order("t.full_name, t.id")
BY_CHANGED = Order("t.changed_at, t.id")
BY_SCORED = Order("t.scored_at")
BY_SCORED_NEWEST = Order("t.scored_at DESC, t.id")
BY_DUE = Order("t.due_at")
BY_DUE_NULLS_LAST = Order("t.due_at NULLS LAST")
BY_DUE_THEN_ID = Order("t.due_at NULLS LAST, t.id")
BY_OCCURRED = Order("t.occurred_at, t.id")
BY_OCCURRED_NEWEST = Order("t.occurred_at DESC")
BY_VALUE = Order("t.value DESC NULLS LAST, t.id")
BY_QD = Order("t.last_qd DESC NULLS LAST, t.id")
BY_POSITION = Order("t.position, t.id")
BY_HELD = Order("t.held_at, t.id")
BY_GRANTED_NEWEST = Order("t.granted_at DESC")
BY_STARTED_NEWEST = Order("t.started_at DESC")
BY_PROJECT_NAME = Order("t.project_id, t.name, t.id")
BY_UNIT = Order("t.project_id, t.tower_id, t.unit_no, t.id")
LEAD_ORDER = {"recent": Order("t.created_at DESC NULLS LAST, t.id"), "qd": BY_QD,
              "stage": Order("t.stage, t.id")}
"""The sorts of the lead list, by name."""
_LAST_MESSAGE = ("(SELECT max(m.occurred_at) FROM comms_messages m WHERE m.tenant_id = "
                 "t.tenant_id AND m.thread_id = t.id AND NOT m.deleted)")
BY_LAST_MESSAGE = Order(f"{_LAST_MESSAGE} DESC NULLS LAST, t.id")
EVERY_COLUMN = Columns("*")
THREAD_COLUMNS = Columns(f"t.*, {_LAST_MESSAGE} AS last_message_at")
QD_COLUMNS = Columns("t.id, t.score, t.scored_at, t.source, t.session_id, t.signals")


def columns(*names: str) -> Columns:
    """These columns of the model (names from the code, never from a caller)."""
    return Columns(", ".join(f"t.{name}" for name in names))


def like(text: str) -> str:
    """``text`` as a literal ILIKE pattern fragment (its own % and _ match only themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def eq(column: str, value: Any) -> Filter:
    """``column`` equals ``value`` (a column name of the model, never caller text)."""
    return Filter(f"t.{column} = $4", (value,))


def among(column: str, values: Sequence[str]) -> Filter:
    """``column`` is one of ``values``."""
    return Filter(f"t.{column} = ANY($4::text[])", (list(values),))


def optional_eqs(**columns: Any) -> Filter:
    """Each column equals its value when the value is not None (text columns)."""
    parts = [f"(${n}::text IS NULL OR t.{name} = ${n})" for n, name in enumerate(columns, 4)]
    return Filter(" AND ".join(parts) or "TRUE", tuple(columns.values()))


def contacts(q: str, city: str | None, segment: str | None, owner_id: str | None) -> Filter:
    """People by a search text (name, phone, email), city, segment or owner."""
    return Filter(
        "($4 = '' OR t.full_name ILIKE '%' || $4 || '%' OR t.primary_phone LIKE '%' || $4 "
        "|| '%' OR t.email ILIKE '%' || $4 || '%') AND ($5::text IS NULL OR t.city = $5) "
        "AND ($6::text IS NULL OR t.segment = $6) AND ($7::text IS NULL OR t.owner_id = $7)",
        (like(q), city, segment, owner_id))


def open_tasks_of(person_id: str) -> Filter:
    return Filter("t.person_id = $4 AND t.status = 'OPEN'", (person_id,))


def leads(stage: str | None, owner_id: str | None, person_id: str | None, source: str | None,
          project_id: str | None, min_qd: int | None, q: str) -> Filter:
    """The lead list's filters; ``q`` searches the client's name and the lead's notes."""
    return Filter(
        "($4::text IS NULL OR t.stage = $4) AND ($5::text IS NULL OR t.owner_id = $5) "
        "AND ($6::text IS NULL OR t.person_id = $6) AND ($7::text IS NULL OR t.source = $7) "
        "AND ($8::text IS NULL OR t.project_id = $8) AND ($9::int IS NULL OR t.last_qd >= $9) "
        "AND ($10 = '' OR t.notes ILIKE '%' || $10 || '%' OR EXISTS (SELECT 1 FROM crm_people "
        "p WHERE p.tenant_id = t.tenant_id AND p.id = t.person_id AND NOT p.deleted "
        "AND p.full_name ILIKE '%' || $10 || '%'))",
        (stage, owner_id, person_id, source, project_id, min_qd, like(q)))


def open_opportunities_of(lead_id: str, closed: Sequence[str]) -> Filter:
    return Filter("t.lead_id = $4 AND NOT (t.stage = ANY($5))", (lead_id, list(closed)))


_HELD = ("EXISTS (SELECT 1 FROM inventory_unit_holds h WHERE h.tenant_id = t.tenant_id AND "
         "h.id = t.id AND h.holder_id IS NOT NULL AND NOT h.deleted AND "
         "(h.expires_at IS NULL OR h.expires_at > now()))")


def units(project_id: str | None, tower_id: str | None, configuration: str | None,
          status: str | None) -> Filter:
    """Units by project, tower and configuration; ``status=HELD`` lists the available units
    with a live hold, ``AVAILABLE`` the ones without."""
    where = optional_eqs(project_id=project_id, tower_id=tower_id, configuration=configuration)
    if status == "HELD":
        return Filter(f"{where.sql} AND t.status = 'AVAILABLE' AND {_HELD}", where.params)
    if status == "AVAILABLE":
        return Filter(f"{where.sql} AND t.status = 'AVAILABLE' AND NOT {_HELD}", where.params)
    if status is not None:
        return Filter(f"{where.sql} AND t.status = $7", (*where.params, status))
    return where


def live_holds(holder_id: str | None) -> Filter:
    """Holds not released nor expired, of one holder or all."""
    return Filter("t.holder_id IS NOT NULL AND (t.expires_at IS NULL OR t.expires_at > now()) "
                  "AND ($4::text IS NULL OR t.holder_id = $4)", (holder_id,))


def threads(person_id: str | None, archived: bool) -> Filter:
    return Filter("($4::text IS NULL OR t.person_id = $4) AND t.archived = $5",
                  (person_id, archived))


def qd_history(lead_id: str, person_id: str | None) -> Filter:
    """A lead's own scores and its person's untagged ones."""
    return Filter("(t.lead_id = $4 OR (t.lead_id IS NULL AND t.person_id = $5))",
                  (lead_id, person_id))


class Projection:
    """Scoped reads of the projection tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def rows(self, principal: Principal, coll_name: str, where: Filter = ALL,
                   order: Order = BY_ID, limit: int = 200, offset: int = 0,
                   columns: Columns = EVERY_COLUMN) -> list[Row]:
        """Rows of one projection table in the caller's tenant and scope."""
        table = collection(coll_name).table
        scope, scope_params = row_scope_sql(principal, coll_name, "t", len(where.params) + 4)
        sql = (f"SELECT {columns} FROM {table} t WHERE t.tenant_id = $1 AND NOT t.deleted AND "
               f"({where.sql}) AND {scope} ORDER BY {order} LIMIT $2 OFFSET $3")
        records = await self._db.pool.fetch(sql, principal.tenant_id, limit, offset,
                                            *where.params, *scope_params)
        return [dict(r) for r in records]

    async def count(self, principal: Principal, coll_name: str, where: Filter = ALL) -> int:
        """How many rows `rows` would list without a limit."""
        counted = await self.rows(principal, coll_name, where, Order("1"), 1, 0,
                                  Columns("count(*) AS n"))
        return int(counted[0]["n"]) if counted else 0

    async def one(self, principal: Principal, coll_name: str, record_id: str) -> Row:
        """One record the caller may read; `NotFound` otherwise."""
        rows = await self.rows(principal, coll_name, eq("id", record_id), limit=1)
        if not rows:
            raise NotFound(f"no {coll_name} record {record_id}")
        return rows[0]

    async def select(self, principal: Principal, coll_name: str, where: Sequence[Cond],
                     order: str, *, limit: int = 200, offset: int = 0) -> list[Row]:
        """The mobile-edge reads: conditions checked against the model
        (`mobile_edge.store.render_where`), ``order`` a column or ``-column``."""
        condition, order_by, params = render_where(coll_name, where, order, lambda n: f"${n}",
                                                   4)
        return await self.rows(principal, coll_name, Filter(condition, tuple(params)),
                               Order(order_by), limit, offset)
