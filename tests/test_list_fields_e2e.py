"""End to end: two offline devices edit one person's tags and one canvas page's components;
after reconnecting, both replicas and the hub's projection hold the merged lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.service import EdgeAgent
from hub.server import HubServer
from tests.hubkit import running_hub
from tests.test_edge_e2e import _paired, _pending_zero, _same, until

pytestmark = pytest.mark.anyio


def _component(cid: str, kind: str, title: str = "") -> dict[str, object]:
    return {"id": cid, "type": kind, "title": title}


async def test_offline_list_edits_on_two_devices_merge_by_identity(tmp_path: Path) -> None:
    async with running_hub() as server:
        url = server.hub.database_url
        a = await _paired(server, tmp_path / "a", "t1-senior_broker")
        b = await _paired(server, tmp_path / "b", "t1-sales_director")
        async with EdgeAgent(a) as edge_a, EdgeAgent(b) as edge_b:
            person = await edge_a.write("people", None, {"full_name": "Zara Khan",
                                                         "tags": ["vip"]})
            page = await edge_a.write("canvas_pages", None, {
                "title": "Tower A pipeline", "editors": ["t1-sales_director"],
                "components": [_component("c1", "kpi"), _component("c2", "table")]})
            await until(lambda: _pending_zero(edge_a))
            await until(lambda: _same(edge_a, edge_b, f"canvas_pages/{page.id}"))
            await until(lambda: _same(edge_a, edge_b, f"people/{person.id}"))
        port = server.port

    # The hub is down: each device edits both lists.
    async with EdgeAgent(a) as edge_a, EdgeAgent(b) as edge_b:
        await edge_a.write("people", person.id, {"tags": ["hot", "vip"]})  # adds hot
        await edge_b.write("people", person.id, {"tags": ["nri"]})  # removes vip, adds nri
        await edge_a.write("canvas_pages", page.id, lambda page: {"components": [
            page["components"][1], page["components"][0], _component("c3", "bar_chart")]})
        await edge_b.write("canvas_pages", page.id, lambda page: {"components": [
            _component("c4", "line_chart"), {**page["components"][0], "title": "Revenue"},
            page["components"][1]]})

    async with running_hub(url) as server2:
        for s in (a, b):
            path = s.data_dir / "device.json"
            path.write_text(path.read_text().replace(f":{port}", f":{server2.port}"))
        async with EdgeAgent(a) as edge_a, EdgeAgent(b) as edge_b:
            await until(lambda: _pending_zero(edge_a))
            await until(lambda: _pending_zero(edge_b))
            await until(lambda: _same(edge_a, edge_b, f"people/{person.id}"))
            await until(lambda: _same(edge_a, edge_b, f"canvas_pages/{page.id}"))
            tags = edge_a.replica.record("people", person.id).tags
            assert tags == ["hot", "nri"]
            components = edge_a.replica.document(f"canvas_pages/{page.id}").content()[
                "components"]
            ids = [c["id"] for c in components]
            assert sorted(ids) == ["c1", "c2", "c3", "c4"]  # each once: none lost, none twice
            assert ids.index("c2") < ids.index("c1") < ids.index("c3")  # a's moves
            assert ids.index("c4") < ids.index("c1")  # b's insert
            assert next(c for c in components if c["id"] == "c1")["title"] == "Revenue"
            assert await _hub_lists(server2, person.id, page.id) == (tags, components)


async def _hub_lists(server: HubServer, person_id: str, page_id: str
                     ) -> tuple[list[str], list[dict[str, object]]]:
    db = server.hub.db.pool
    tags = await db.fetchval("SELECT tags FROM crm_people WHERE id = $1", person_id)
    components = await db.fetchval("SELECT components FROM oracle_canvas_pages WHERE id = $1",
                                   page_id)
    return _json(tags), [{k: v for k, v in c.items() if k in ("id", "type", "title")}
                         for c in _json(components)]


def _json(value: object) -> list:  # type: ignore[type-arg]
    return json.loads(value) if isinstance(value, str) else list(value)  # type: ignore[arg-type]
