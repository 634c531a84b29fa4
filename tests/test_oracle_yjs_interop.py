"""Stock Yjs clients (the npm packages yjs, y-websocket and ws, installed into a temporary folder
for this test) edit a canvas page together with a Python edge and the REST API."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pycrdt as Y
import pytest
import websockets

from schema import collection
from sync import yws
from sync.record import RecordDoc
from tests.hubkit import login, pair_device, running_hub

pytestmark = pytest.mark.anyio
CLIENT = Path(__file__).parent / "yjs" / "canvas_client.mjs"
NPM_PACKAGES = ("yjs@13", "y-websocket@3", "ws@8")


@pytest.fixture(scope="module")
def yjs_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Node.js client script beside its own node_modules (never in the repository)."""
    folder = tmp_path_factory.mktemp("yjs-client")
    (folder / "package.json").write_text('{"name": "canvas-interop", "type": "module"}')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", *NPM_PACKAGES],
                   cwd=folder, check=True, timeout=300)
    shutil.copy(CLIENT, folder / CLIENT.name)
    return folder / CLIENT.name


def _component(cid: str, title: str) -> dict[str, Any]:
    return {"id": cid, "type": "table", "title": title, "data_rows": [{"city": "Dubai"}]}


async def _node(script: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node", str(script), *args, cwd=script.parent,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _line(proc: asyncio.subprocess.Process, timeout: float = 40) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        assert proc.stderr is not None
        raise AssertionError(f"node client ended: {(await proc.stderr.read()).decode()}")
    return line.decode().strip()


async def _hub_content(server: Any, page_id: str) -> dict[str, Any]:
    doc = await server.hub.store.document("t1", f"canvas_pages/{page_id}")
    return RecordDoc(collection("canvas_pages"), page_id, state=doc.state).content()


async def test_node_yjs_client_python_edge_and_rest_converge(yjs_client: Path) -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        owner = await login(server, "junior_broker@t1.test")
        editor = await login(server, "senior_broker@t1.test")
        r = await http.post("/api/oracle/v1/canvas-pages", headers=owner, json={"values": {
            "title": "Sales meeting", "editors": ["t1-senior_broker"],
            "components": [_component("c1", "Hot leads")]}})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        guid = f"canvas_pages/{pid}"
        edge = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 7101)
        await edge.connect()
        ws_url = server.url.replace("http", "ws") + "/api/oracle/v1/ws/oracle/canvas"
        text = "Agenda from Node. "
        expect = {"title": "Converged", "text": text, "components": ["c1", "c2"]}
        node = await _node(yjs_client, "edit", ws_url, pid, editor["Authorization"][7:],
                           json.dumps(expect))
        try:
            await edge.wait_for(lambda: guid in edge.docs)
            assert await _line(node) == "ready"
            # the three edit at once: Node types, the edge renames, REST adds a component
            await asyncio.gather(
                edge.write(guid, {"title": "Converged"}, "edge-1"),
                http.post(f"/api/oracle/v1/canvas-pages/{pid}/components", headers=owner,
                          json={"component": _component("c2", "Visits")}),
            )
            result = json.loads(await _line(node))
            await edge.wait_for(lambda: text in edge.doc(guid).content()["narrative"]
                                and len(edge.doc(guid).content()["components"]) == 2)
        finally:
            await edge.close()
            if node.returncode is None:
                node.kill()
            await node.wait()
        assert "edge-1" in edge.acks and not edge.refusals
        hub = await _hub_content(server, pid)
        mine = edge.doc(guid).content()
        for content in (mine, {**result["a"]["fields"], **result["a"]}):
            assert content["title"] == hub["title"] == "Converged"
            assert content["narrative"] == hub["narrative"] == text
            assert [c["id"] for c in content["components"]] == ["c1", "c2"]
        assert result["a"] == result["b"]
        assert "Node B" in result["names"]  # presence: A sees B on the page
        page = (await http.get(f"/api/oracle/v1/canvas-pages/{pid}", headers=owner)).json()
        assert page["narrative"] == text and page["title"] == "Converged"


async def test_yjs_clients_without_rights_or_with_bad_bytes_are_refused(yjs_client: Path
                                                                        ) -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        owner = await login(server, "junior_broker@t1.test")
        r = await http.post("/api/oracle/v1/canvas-pages", headers=owner, json={"values": {
            "title": "Private", "editors": ["t1-senior_broker"],
            "components": [_component("c1", "Hot leads")]}})
        pid = r.json()["id"]
        ws_url = server.url.replace("http", "ws") + "/api/oracle/v1/ws/oracle/canvas"
        before = await server.hub.store.document("t1", f"canvas_pages/{pid}")

        # a stock client of a user the page is not shared with is refused
        stranger = (await login(server, "junior2@t1.test"))["Authorization"][7:]
        node = await _node(yjs_client, "refused", ws_url, pid, stranger)
        closed = json.loads(await _line(node))
        await node.wait()
        assert closed["code"] == 4003 and closed["reason"] == "not_shared"

        # a viewer (directors view every page) may not write
        director = (await login(server, "sales_director@t1.test"))["Authorization"][7:]
        doc = Y.Doc(client_id=4242)
        doc.get("narrative", type=Y.Text).insert(0, "sneaky")
        code, reason = await _raw(f"{ws_url}/{pid}?token={director}",
                                  yws.encode_sync(yws.SyncStep.UPDATE, doc.get_update()))
        assert (code, reason) == (4003, "view_only")

        # an editor's client sending hostile bytes is disconnected
        token = (await login(server, "senior_broker@t1.test"))["Authorization"][7:]
        hostile = b"\x01\x02\xad\x8e\x01\x00\x28\x00\xff\xff\xff\x0f\x01"
        code, _ = await _raw(f"{ws_url}/{pid}?token={token}",
                             yws.encode_sync(yws.SyncStep.UPDATE, hostile))
        assert code == 4000
        code, _ = await _raw(f"{ws_url}/{pid}?token={token}", b"\x07\x00")
        assert code == 4000
        code, _ = await _raw(f"{ws_url}/{pid}?token=forged", b"")
        assert code == 4001

        after = await server.hub.store.document("t1", f"canvas_pages/{pid}")
        assert after is not None and before is not None and after.state == before.state
        page = (await http.get(f"/api/oracle/v1/canvas-pages/{pid}", headers=owner)).json()
        assert page["narrative"] == "" and [c["id"] for c in page["components"]] == ["c1"]


async def _raw(url: str, frame: bytes) -> tuple[int | None, str | None]:
    """Connect, send ``frame`` once the hub's first sync message arrived, and return how the
    hub closed the connection."""
    async with websockets.connect(url) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 10)
            if frame:
                await ws.send(frame)
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as exc:
            return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None)


async def test_a_yjs_client_may_not_write_with_a_devices_client_id() -> None:
    """A Yjs session binds its user's client ids once and remembers them; an update authored
    with a device's client id is refused even after the session's own were accepted."""
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        owner = await login(server, "junior_broker@t1.test")
        r = await http.post("/api/oracle/v1/canvas-pages", headers=owner, json={"values": {
            "title": "Ids", "editors": ["t1-senior_broker"]}})
        pid = r.json()["id"]
        guid = f"canvas_pages/{pid}"
        device = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 7201)
        await device.connect()
        try:
            await device.wait_for(lambda: guid in device.docs)
            await device.write(guid, {"title": "From the iPad"}, "d-1")
            await device.wait_for(lambda: "d-1" in device.acks)
        finally:
            await device.close()
        token = (await login(server, "senior_broker@t1.test"))["Authorization"][7:]
        url = server.url.replace("http", "ws") + f"/api/oracle/v1/ws/oracle/canvas/{pid}"
        mine, forged = Y.Doc(client_id=4343), Y.Doc(client_id=7201)
        async with websockets.connect(f"{url}?token={token}") as ws:
            await asyncio.wait_for(ws.recv(), 10)
            for n in range(2):  # the second reuses the binding the first made
                text = mine.get("narrative", type=Y.Text)
                before = mine.get_state()
                text.insert(len(str(text)), f"ok{n} ")
                await ws.send(yws.encode_sync(yws.SyncStep.UPDATE, mine.get_update(before)))
            forged.get("narrative", type=Y.Text).insert(0, "forged ")
            await ws.send(yws.encode_sync(yws.SyncStep.UPDATE, forged.get_update()))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "foreign_client")
        content = await _hub_content(server, pid)
        assert content["narrative"] == "ok0 ok1 " and content["title"] == "From the iPad"
