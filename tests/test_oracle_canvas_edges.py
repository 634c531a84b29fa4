"""Canvas pages on edge devices: listed, read and edited offline through the local API, merged
on reconnect with no duplicated and no lost component."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from tests.hubkit import login, running_hub
from tests.test_edge_e2e import _paired, _pending_zero, _same, until

pytestmark = pytest.mark.anyio
PAGES = "/api/oracle/v1/canvas-pages"


def _chart(cid: str, title: str) -> dict[str, Any]:
    return {"id": cid, "type": "bar_chart", "title": title, "config": {"x": "city"},
            "source": {"kind": "sql", "text": "SELECT city, count(*) FROM crm_people"},
            "data_rows": [{"city": "Dubai", "count": 3}]}


class Local:
    """A device's loopback API, called in-process with its local token."""

    def __init__(self, agent: EdgeAgent) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_local_app(agent)),
                                      base_url="http://edge")
        self.auth = {"Authorization": f"Bearer {agent.token}"}

    async def __aenter__(self) -> Local:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, json: Any = None, expect: int = 200) -> Any:
        r = await self.http.request(method, PAGES + path, json=json, headers=self.auth)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json()


async def test_two_offline_devices_edit_one_page_and_converge(tmp_path: Path) -> None:
    async with running_hub() as server:
        owner = await login(server, "junior_broker@t1.test")
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post(PAGES, headers=owner, json={"values": {
                "title": "Site visit board", "editors": ["t1-senior_broker"],
                "components": [_chart(c, c.upper()) for c in ("c1", "c2", "c3")]}})
            assert r.status_code == 201, r.text
        pid = r.json()["id"]
        guid = f"canvas_pages/{pid}"
        a = await _paired(server, tmp_path / "a", "t1-junior_broker")
        b = await _paired(server, tmp_path / "b", "t1-senior_broker")
        for settings in (a, b):  # both receive the page while online
            async with EdgeAgent(settings) as edge:
                assert edge.sync is not None
                await asyncio.wait_for(edge.sync.caught_up.wait(), 30)  # stored, not only seen
                assert await _holds(edge, guid)

        # offline, through each device's local API
        async with EdgeAgent(a, sync=False) as edge_a, Local(edge_a) as local_a:
            assert [p["id"] for p in await local_a.call("GET", "")] == [pid]
            await local_a.call("POST", f"/{pid}/components",
                               {"component": _chart("c4", "Added on A"), "after": "c1"},
                               expect=201)
            await local_a.call("POST", f"/{pid}/components/c3/move", {"first": True})
            await local_a.call("PATCH", f"/{pid}/components/c2", {"values": {"title": "A"}})
        async with EdgeAgent(b, sync=False) as edge_b, Local(edge_b) as local_b:
            await local_b.call("POST", f"/{pid}/components",
                               {"component": _chart("c5", "Added on B")}, expect=201)
            await local_b.call("PATCH", f"/{pid}/components/c3",
                               {"values": {"config": {"x": "segment"}}})
            await local_b.call("DELETE", f"/{pid}/components/c1")
            page = await local_b.call("GET", f"/{pid}")
            assert [c["id"] for c in page["components"]] == ["c2", "c3", "c5"]

        # back online: both push, both pull, everyone agrees
        async with EdgeAgent(a) as edge_a, EdgeAgent(b) as edge_b:
            await until(lambda: _pending_zero(edge_a))
            await until(lambda: _pending_zero(edge_b))
            await until(lambda: _same(edge_a, edge_b, guid))
            merged = edge_a.replica.record("canvas_pages", pid).model_dump(mode="json")
            assert await edge_a.replica.refusals() == await edge_b.replica.refusals() == []
        ids = [c["id"] for c in merged["components"]]
        assert sorted(ids) == ["c2", "c3", "c4", "c5"]  # each once; the removed one gone
        assert ids[0] == "c3"  # moved first on A
        by_id = {c["id"]: c for c in merged["components"]}
        assert by_id["c3"]["config"] == {"x": "segment"}  # edited on B while A moved it
        assert by_id["c2"]["title"] == "A" and by_id["c4"]["title"] == "Added on A"
        async with httpx.AsyncClient(base_url=server.url) as http:
            hub_page = (await http.get(f"{PAGES}/{pid}", headers=owner)).json()
        assert hub_page["components"] == merged["components"]


async def _holds(agent: EdgeAgent, guid: str) -> bool:
    return guid in {d.guid for d in agent.replica.documents()}
