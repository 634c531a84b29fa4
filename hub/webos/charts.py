"""Charts as inline SVG rendered on the server: horizontal bars, a histogram and a line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

PALETTE = ("#1d5bbf", "#0e7c66", "#8a3ffc", "#c2410c", "#0369a1", "#a21caf", "#4d7c0f",
           "#b91c1c")
"""Bar colours, each with >= 3:1 contrast against white (graphical objects, WCAG 1.4.11)."""


def _svg(width: int, height: int, title: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>")


def _empty(width: int, height: int, title: str) -> Markup:
    return _svg(width, height, title, f'<text class="empty" x="{width / 2}" y="{height / 2}" '
                'text-anchor="middle">No data yet</text>')


def bars(items: Sequence[tuple[str, float]], title: str,
         fmt: Callable[[float], str] = "{:,.0f}".format, width: int = 520) -> Markup:
    """Horizontal bars, one row per (label, value), the value (``fmt``) at the bar's end."""
    if not items or max(v for _, v in items) <= 0:
        return _empty(width, 120, title)
    row, label_w, value_w = 26, 120, 70
    height = row * len(items) + 8
    top = max(v for _, v in items)
    span = width - label_w - value_w
    parts = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = max(1.0, span * value / top) if value > 0 else 0
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="3" '
            f'fill="{colour}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(fmt(value))}</text>')
    return _svg(width, height, title, "".join(parts))


def histogram(counts: Sequence[int], edges: Sequence[int], title: str, width: int = 520,
              height: int = 200) -> Markup:
    """Vertical bars of ``counts``; bucket ``i`` spans ``edges[i]``–``edges[i + 1]``."""
    if not counts or max(counts) == 0:
        return _empty(width, height, title)
    left, bottom, top_pad = 36, 28, 12
    plot_h = height - bottom - top_pad
    step = (width - left - 8) / len(counts)
    top = max(counts)
    parts = [f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - 4}" '
             f'y2="{height - bottom}"/>']
    for frac in (0.5, 1.0):
        y = height - bottom - plot_h * frac
        parts.append(f'<line class="grid-line" x1="{left}" y1="{y:.1f}" x2="{width - 4}" '
                     f'y2="{y:.1f}"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{round(top * frac)}</text>")
    for i, n in enumerate(counts):
        h = plot_h * n / top
        x = left + i * step
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{height - bottom - h:.1f}" width="{step - 4:.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>QD {edges[i]}–{edges[i + 1]}: {n}'
            f"</title></rect>"
            f'<text x="{x + step / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{edges[i]}</text>")
    return _svg(width, height, title, "".join(parts))


def line(points: Sequence[tuple[datetime, float]], title: str, y_max: float = 100,
         width: int = 520, height: int = 200) -> Markup:
    """A line of (time, value) points on a 0–``y_max`` scale, each point marked."""
    if not points:
        return _empty(width, height, title)
    left, bottom, top_pad, right = 36, 28, 12, 12
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    spread = (t1 - t0) or 1.0

    def xy(at: datetime, value: float) -> tuple[float, float]:
        x = left + (plot_w * (at.timestamp() - t0) / spread if len(points) > 1 else plot_w / 2)
        return x, height - bottom - plot_h * value / y_max

    parts = [f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - right}" '
             f'y2="{height - bottom}"/>']
    for tick in (0, y_max / 2, y_max):
        y = height - bottom - plot_h * tick / y_max
        parts.append(f'<line class="grid-line" x1="{left}" y1="{y:.1f}" x2="{width - right}" '
                     f'y2="{y:.1f}"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{tick:.0f}</text>")
    coords = [xy(at, v) for at, v in points]
    parts.append('<polyline class="line" points="'
                 + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
    for (at, v), (x, y) in zip(points, coords, strict=True):
        parts.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3.5"><title>'
                     f'{at:%Y-%m-%d %H:%M}: {v:.0f}</title></circle>')
    parts.append(f'<text x="{left}" y="{height - 8}">{points[0][0]:%d %b}</text>'
                 f'<text x="{width - right}" y="{height - 8}" text-anchor="end">'
                 f"{points[-1][0]:%d %b}</text>")
    return _svg(width, height, title, "".join(parts))
