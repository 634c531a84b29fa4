"""What each canvas component shows, worked out from its config and data rows (pure): the
templates draw these views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hub.webos.oracle.charts import Chart, axes, chart, format_value, is_number

Row = Mapping[str, Any]
TABLE_ROWS = 100
"""Rows a table tile shows (the count of the rest is said)."""
STREAM_ITEMS = 50
GRID_COLUMNS = 12
TYPE_NAMES = {"kpi": "KPI", "bar_chart": "Bar chart", "line_chart": "Line chart",
              "table": "Table", "activity_stream": "Activity stream",
              "pipeline_board": "Pipeline board", "client_summary": "Client summary"}


@dataclass(frozen=True)
class Stage:
    name: str
    total: str
    cards: list[str]


@dataclass(frozen=True)
class ComponentView:
    """One component as the page draws it."""

    id: str
    type: str
    title: str
    style: str
    """The grid placement from its layout (column start, width and height)."""
    kpi: tuple[str, str] | None = None
    """(value, label)."""
    chart: Chart | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    more_rows: int = 0
    items: list[tuple[str, str]] = field(default_factory=list)
    """Activity: (when, what), newest first."""
    stages: list[Stage] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    """Client summary: (label, value)."""

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, self.type)


def view(component: Mapping[str, Any]) -> ComponentView:
    """The view of one component (a dict as the page holds it)."""
    kind = str(component.get("type", "table"))
    rows = [r for r in component.get("data_rows") or [] if isinstance(r, Mapping)]
    config = component.get("config") or {}
    base = ComponentView(str(component["id"]), kind, str(component.get("title", "")),
                         grid_style(component.get("layout") or {}))
    if kind == "kpi":
        return replace(base, kpi=_kpi(rows, config))
    if kind in ("bar_chart", "line_chart"):
        return replace(base, chart=chart(rows, config, kind.split("_")[0]))
    if kind == "activity_stream":
        return replace(base, items=_activity(rows, config))
    if kind == "pipeline_board":
        return replace(base, stages=_stages(rows, config))
    if kind == "client_summary":
        return replace(base, facts=_facts(rows))
    columns = _columns(rows, config)
    return replace(base, columns=columns,
                         rows=[[format_value(r.get(c)) for c in columns]
                               for r in rows[:TABLE_ROWS]],
                         more_rows=max(len(rows) - TABLE_ROWS, 0))


def grid_style(layout: Mapping[str, Any]) -> str:
    """CSS grid placement on the page's 12 columns: ``x`` the column start, ``w`` the width,
    ``h`` the height in rows; the reading order is the component order."""
    w = _bounded(layout.get("w"), 1, GRID_COLUMNS, 6)
    h = _bounded(layout.get("h"), 1, 12, 3)
    x = layout.get("x")
    if is_number(x) and 0 <= x < GRID_COLUMNS:
        start = int(x) + 1
        w = min(w, GRID_COLUMNS - start + 1)
        return f"grid-column: {start} / span {w}; grid-row: span {h}"
    return f"grid-column: span {w}; grid-row: span {h}"


def _bounded(value: Any, low: int, high: int, default: int) -> int:
    return max(low, min(high, int(value))) if is_number(value) else default


def _columns(rows: Sequence[Row], config: Mapping[str, Any]) -> list[str]:
    wanted = config.get("columns")
    if isinstance(wanted, list) and all(isinstance(c, str) for c in wanted) and wanted:
        return wanted
    out: dict[str, None] = {}
    for row in rows[:TABLE_ROWS]:
        out.update(dict.fromkeys(str(k) for k in row))
    return list(out)


def _kpi(rows: Sequence[Row], config: Mapping[str, Any]) -> tuple[str, str]:
    _, y = axes(rows, config)
    value = rows[0].get(y) if rows and y else config.get("value")
    unit = str(config.get("unit", ""))
    text = format_value(value) if value is not None else "—"
    return (f"{text} {unit}".strip(), str(config.get("label") or y or ""))


def _activity(rows: Sequence[Row], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    when = config.get("x") if isinstance(config.get("x"), str) else None
    what = config.get("y") if isinstance(config.get("y"), str) else None
    columns = list(rows[0]) if rows else []
    when = when or next((c for c in columns if c in ("at", "time", "created_at", "when",
                                                      "occurred_at", "date")), None)
    what = what or next((c for c in columns if c != when), None)
    items = [(format_value(r.get(when)) if when else "", format_value(r.get(what)) if what else "")
             for r in rows]
    items.sort(key=lambda item: item[0], reverse=True)
    return items[:STREAM_ITEMS]


def _stages(rows: Sequence[Row], config: Mapping[str, Any]) -> list[Stage]:
    """Stages in first-seen order; each with its total (the measure's sum, else the count)
    and, for rows that name something, cards."""
    x = config.get("x")
    stage_col = x if isinstance(x, str) else "stage"
    _, measure = axes(rows, {"x": stage_col, "y": config.get("y")})
    name_col = next((c for c in ("name", "title", "lead", "client")
                     if any(c in r for r in rows)), None)
    order: dict[str, tuple[float, list[str]]] = {}
    for row in rows:
        stage = format_value(row.get(stage_col)) or "—"
        total, cards = order.setdefault(stage, (0.0, []))
        value = row.get(measure) if measure else None
        total += float(value) if is_number(value) else 1.0
        if name_col and row.get(name_col) is not None:
            cards.append(format_value(row.get(name_col)))
        order[stage] = (total, cards)
    return [Stage(name, format_value(total), cards[:20]) for name, (total, cards) in order.items()]


def _facts(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """A client summary: the first row's fields, or ``label``/``value`` rows."""
    if rows and all({"label", "value"} <= set(r) for r in rows):
        return [(format_value(r["label"]), format_value(r["value"])) for r in rows]
    first = rows[0] if rows else {}
    return [(str(k).replace("_", " ").capitalize(), format_value(v)) for k, v in first.items()]
