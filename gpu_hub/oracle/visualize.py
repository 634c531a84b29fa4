"""The visualization planner: pick a canvas component from the shape of the result rows.

Six shapes: one number → ``kpi``; stage + number → ``pipeline_board``; time + number →
``line_chart``; time + text rows → ``activity_stream``; category + number → ``bar_chart``;
anything else → ``table``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from schema.models import ComponentType, LeadStage, OpportunityStage

STAGES = frozenset(s.value for s in (*LeadStage, *OpportunityStage))
_MAX_CATEGORIES = 50


Shape = ComponentType
"""The canvas component types; the planner picks all but ``client_summary``."""


class Visualization(BaseModel):
    component: Shape
    title: str
    x: str | None = None
    """The category, stage or time column."""
    y: str | None = None
    """The measure column."""
    columns: list[str]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_time(v: Any) -> bool:
    if isinstance(v, datetime | date):
        return True
    if not isinstance(v, str) or len(v) < 10 or v[4:5] != "-" or v[7:8] != "-":
        return False
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def _column_kind(rows: list[dict[str, Any]], column: str) -> str:
    values = [r[column] for r in rows if r.get(column) is not None]
    if not values:
        return "empty"
    if all(_is_number(v) for v in values):
        return "number"
    if all(_is_time(v) for v in values):
        return "time"
    if all(isinstance(v, str) for v in values):
        return "text"
    return "other"


def plan_visualization(columns: list[str], rows: list[dict[str, Any]],
                       title: str) -> Visualization:
    """The component that shows ``rows`` best, with the columns it binds."""
    def vis(shape: Shape, x: str | None = None, y: str | None = None) -> Visualization:
        return Visualization(component=shape, title=title, x=x, y=y, columns=columns)

    if not rows:
        return vis(Shape.TABLE)
    kinds = {c: _column_kind(rows, c) for c in columns}
    numbers = [c for c in columns if kinds[c] == "number"]
    times = [c for c in columns if kinds[c] == "time"]
    texts = [c for c in columns if kinds[c] == "text"]
    if len(rows) == 1 and len(columns) == 1 and numbers:
        return vis(Shape.KPI, y=numbers[0])
    if len(columns) == 2 and len(numbers) == 1:
        other = next(c for c in columns if c != numbers[0])
        if kinds[other] == "text" and {r[other] for r in rows} <= STAGES | {None}:
            return vis(Shape.PIPELINE_BOARD, other, numbers[0])
        if kinds[other] == "time":
            return vis(Shape.LINE_CHART, other, numbers[0])
        if kinds[other] == "text" and len(rows) <= _MAX_CATEGORIES:
            return vis(Shape.BAR_CHART, other, numbers[0])
    if times and texts and not numbers[1:] and len(columns) <= 4:
        return vis(Shape.ACTIVITY_STREAM, times[0], texts[0])
    return vis(Shape.TABLE)
