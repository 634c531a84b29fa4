"""What the Oracle pages draw from a component (pure): every type, odd and hostile data rows,
chart geometry inside its box; the committed live script matches its source and carries the
licences of what it bundles."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hub.webos.oracle import components
from hub.webos.oracle.charts import HEIGHT, WIDTH, chart
from hub.webos.oracle.routes import _json_script
from hub.webos.render import env
from tests.webos.test_oracle_pages import sample_components

STATIC = Path(__file__).resolve().parents[2] / "hub" / "webos" / "static"


def _html(component: dict[str, Any], editable: bool = True) -> str:
    card = env.get_template("oracle_card.html").module.card  # type: ignore[attr-defined]
    return str(card(components.view(component), editable))


@pytest.mark.parametrize("component", sample_components(), ids=lambda c: c["type"])
def test_every_type_renders_its_rows(component: dict[str, Any]) -> None:
    html = _html(component)
    assert f'data-component-id="{component["id"]}"' in html
    assert component["title"] in html
    row = component["data_rows"][0]
    shown = [v for v in row.values() if isinstance(v, str) and not v[:4].isdigit()]
    assert all(value.lower() in html.lower() for value in shown)  # stages read "Qualified"


def test_charts_stay_inside_their_box_and_read_their_axes() -> None:
    rows = [{"city": c, "leads": n} for c, n in (("Dubai", 42), ("Pune", -7), ("Doha", 0))]
    bars = chart(rows, {"x": "city", "y": "leads"}, "bar")
    assert [b.label for b in bars.bars] == ["Dubai", "Pune", "Doha"]
    for b in bars.bars:
        assert b.x >= 0 and b.x + b.width <= WIDTH
        assert b.y >= 0 and b.y + b.height <= HEIGHT
    assert min(t.value for t in bars.ticks) <= -7 and max(t.value for t in bars.ticks) >= 42
    tall = next(b for b in bars.bars if b.label == "Dubai")
    low = next(b for b in bars.bars if b.label == "Pune")
    assert tall.y + tall.height == pytest.approx(bars.baseline) and low.y == pytest.approx(
        bars.baseline)  # a negative bar hangs below the zero line
    line = chart([{"week": f"w{i}", "visits": v} for i, v in enumerate((3, 9, 6))], {}, "line")
    assert [p.value for p in line.points] == [3, 9, 6]
    assert line.points[1].y < line.points[2].y < line.points[0].y  # higher value, higher up
    assert line.polyline.count(",") == 3


@pytest.mark.parametrize("rows,config,layout", [
    ([], {}, {}),
    ([{"a": None, "b": True}], {"x": 5, "y": ["no"]}, {"w": "wide", "x": -3, "h": 99}),
    ([{"n": float("1e308")}, {"n": -1e308}], {"columns": ["n", 7]}, {"x": 11, "w": 12}),
    ([{"nested": {"deep": [1, 2]}, "text": "<script>alert(1)</script>"}], {"y": "nested"},
     {"x": 3.5, "w": 0}),
    ([{"stage": s, "amount": v} for s, v in (("NEW", 1.5), ("NEW", "x"), (None, 2))],
     {"x": "stage"}, {}),
])
@pytest.mark.parametrize("kind", list(components.TYPE_NAMES))
def test_odd_rows_and_layouts_render_without_error(kind: str, rows: list[dict[str, Any]],
                                                   config: dict[str, Any],
                                                   layout: dict[str, Any]) -> None:
    html = _html({"id": "c1", "type": kind, "title": "T <b>", "config": config,
                  "data_rows": rows, "layout": layout})
    assert "<script>" not in html and "T &lt;b&gt;" in html
    style = re.search(r'style="([^"]*)"', html)
    assert style and re.fullmatch(r"grid-column: (\d+ / )?span \d+; grid-row: span \d+",
                                  style.group(1))


def test_layout_places_components_on_twelve_columns() -> None:
    assert components.grid_style({"x": 0, "w": 4, "h": 2}) == \
        "grid-column: 1 / span 4; grid-row: span 2"
    assert components.grid_style({"x": 10, "w": 6}) == "grid-column: 11 / span 2; grid-row: span 3"
    assert components.grid_style({}) == "grid-column: span 6; grid-row: span 3"


def test_the_initial_state_cannot_close_its_script_element() -> None:
    hostile = [{"id": "c1", "title": "</script><script>alert(1)</script> & <!--"}]
    text = str(_json_script(hostile))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == hostile


def test_the_bundle_is_built_from_the_source_and_names_its_licences() -> None:
    bundle = (STATIC / "oracle-live.js").read_text()
    header = bundle[:bundle.index("*/")]
    source = hashlib.sha256((STATIC / "oracle-live.src.js").read_bytes()).hexdigest()
    assert f"sha256 {source}" in header, "rebuild it: hub/webos/static/build-oracle-live.sh"
    for package in ("yjs", "y-websocket", "y-protocols", "lib0"):
        assert re.search(rf"^{package} [\d.]+ \(MIT\)$", header, re.MULTILINE), package
    assert header.count("Permission is hereby granted") >= 4
