"""Chart geometry for canvas components: data rows in, SVG coordinates out (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

WIDTH, HEIGHT = 480, 240
"""The SVG's viewBox; the browser scales it to the tile."""
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 30, 12, 40
LINE_INSET = 30
"""How far a line chart's first and last points stay from the plot's sides."""
MAX_POINTS = 200
"""Rows beyond this are not drawn (the table shows them all)."""

MAX_MAGNITUDE = 1e100
"""Measures this large (or NaN, or infinite) are not drawn: no scale fits them with others."""
Row = Mapping[str, Any]


def is_number(value: Any) -> TypeGuard[int | float]:
    """A number, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def axes(rows: Sequence[Row], config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The category (x) and measure (y) columns: the config's, else the first text and the
    first numeric column of the rows."""
    columns = list(rows[0]) if rows else []
    x = config.get("x") if isinstance(config.get("x"), str) else None
    y = config.get("y") if isinstance(config.get("y"), str) else None
    if y is None:
        y = next((c for c in columns if any(is_number(r.get(c)) for r in rows)), None)
    if x is None:
        x = next((c for c in columns if c != y), None)
    return x, y


@dataclass(frozen=True)
class Tick:
    value: float
    y: float
    label: str


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    label_x: float


@dataclass(frozen=True)
class Point:
    label: str
    value: float
    x: float
    y: float


@dataclass(frozen=True)
class Chart:
    """What a bar or line chart template draws."""

    x_name: str
    y_name: str
    ticks: list[Tick]
    bars: list[Bar]
    points: list[Point]
    baseline: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PAD_LEFT
    right: int = WIDTH - PAD_RIGHT

    @property
    def label_y(self) -> int:
        return self.height - PAD_BOTTOM + 16

    @property
    def label_step(self) -> int:
        """Draw every n-th category label so that about ten fit."""
        return max(1, -(-len(self.bars or self.points) // 10))

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def empty(self) -> bool:
        return not (self.bars or self.points)


def _series(rows: Sequence[Row], x: str | None, y: str | None) -> list[tuple[str, float]]:
    if y is None:
        return []
    out = []
    for row in rows[:MAX_POINTS]:
        value = row.get(y)
        if is_number(value) and abs(value) < MAX_MAGNITUDE:  # also: not NaN, not infinite
            out.append((format_value(row.get(x)) if x else "", float(value)))
    return out


def _scale(values: Sequence[float]) -> tuple[float, float, float]:
    """The axis range, zero included, widened to whole steps of a round size (1, 2 or 5 times
    a power of ten) that give about four intervals; and that step."""
    low, high = min(0.0, *values), max(0.0, *values)
    if high == low:
        high = low + 1.0
    raw = (high - low) / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _ticks(low: float, high: float, step: float, y_of: Any) -> list[Tick]:
    count = round((high - low) / step)
    return [Tick(v, y_of(v), compact(v)) for v in (low + step * i for i in range(count + 1))]


def compact(value: float) -> str:
    """An axis label that fits the margin: 950, 12K, 3.5M, 1.2B."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{round(value, 6):g}"


def chart(rows: Sequence[Row], config: Mapping[str, Any], kind: str) -> Chart:
    """The geometry of a ``bar`` or ``line`` chart of the rows."""
    x, y = axes(rows, config)
    series = _series(rows, x, y)
    names = (x or "", y or "")
    if not series:
        return Chart(*names, ticks=[], bars=[], points=[], baseline=HEIGHT - PAD_BOTTOM)
    low, high, step = _scale([v for _, v in series])
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT

    def y_of(v: float) -> float:
        return PAD_TOP + plot_h * (high - v) / (high - low)

    baseline = y_of(0.0)
    bars: list[Bar] = []
    points: list[Point] = []
    if kind == "bar":
        slot = plot_w / len(series)
        for i, (label, value) in enumerate(series):
            top, bottom = sorted((y_of(value), baseline))
            left = PAD_LEFT + slot * i + slot * 0.15
            bars.append(Bar(label, value, left, top, slot * 0.7, max(bottom - top, 0.5),
                            left + slot * 0.35))
    else:
        inset = LINE_INSET if len(series) > 1 else plot_w / 2  # room for the end labels
        gap = (plot_w - 2 * inset) / max(len(series) - 1, 1)
        points = [Point(label, value, PAD_LEFT + inset + gap * i, y_of(value))
                  for i, (label, value) in enumerate(series)]
    return Chart(*names, ticks=_ticks(low, high, step, y_of), bars=bars, points=points,
                 baseline=baseline)


def format_value(value: Any) -> str:
    """A cell or measure as a person reads it: whole floats without ``.0``, thousands
    separated."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    text = str(value)
    if _ISO_TIME.match(text):  # 2026-11-30T10:05:00+00:00 → 2026-11-30 10:05
        return text[:16].replace("T", " ")
    return text


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
