"""Edge-first GPU jobs: a broker asks for an Oracle answer and a Dream Weaver render while the
device is offline; after it reconnects the requests run once on the hub (two hubs watch the same
database) and the status, progress and results sync back to the device. Requests the user may
not make are refused, at sync or when run; a request pushed twice runs once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from gpu_hub.jobs import JobKind
from hub.server import HubServer, free_port
from sync import protocol as p
from tests.hubkit import login, pair_device, running_hub
from tests.reliability.kit import paired, point_at, until
from tests.standins.asgi import serve, serve_comfy
from tests.standins.comfyui import ComfyStandIn, tiny_png
from tests.standins.sglang import SglangStandIn

pytestmark = pytest.mark.anyio
PHOTO = tiny_png(70)
PER_STAGE = ("```sql\nSELECT stage, count(*) AS leads FROM crm_leads GROUP BY stage "
             "ORDER BY stage LIMIT 50\n```")


def _planner(messages: list[dict[str, Any]]) -> str:
    """The LLM stand-in: SQL for Oracle questions (a DELETE when asked to delete), a prompt
    for Dream Weaver's expansion."""
    ask = str(messages[-1]["content"])
    if "Stable Diffusion" in str(messages[0]["content"]):
        return "a sunlit staged living room, oak and linen"
    if "delete" in ask.lower() or "refused" in ask:
        return "```sql\nDELETE FROM crm_leads\n```"
    return PER_STAGE


@asynccontextmanager
async def _two_hubs(env: dict[str, str]) -> AsyncIterator[tuple[HubServer, HubServer]]:
    """Two hubs on one database, both watching GPU requests and running GPU jobs."""
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    try:
        async with running_hub() as first, running_hub(first.hub.database_url) as second:
            yield first, second
    finally:
        mp.undo()


def _local(agent: EdgeAgent) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_local_app(agent)),
                             base_url="http://device",
                             headers={"Authorization": f"Bearer {agent.token}"}, timeout=30)


async def _jobs(server: HubServer, request_id: str) -> int:
    count: int = await server.hub.db.pool.fetchval(
        "SELECT count(*) FROM gpu_jobs WHERE idempotency_key = $1", f"request:{request_id}")
    return count


async def test_offline_requests_run_after_reconnect_and_results_reach_the_device(
        tmp_path: Path) -> None:
    llm = SglangStandIn(responder=_planner)
    comfy = ComfyStandIn("gpu0")
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(serve(llm.app()))
        comfy_url = await stack.enter_async_context(serve_comfy(comfy))
        first, second = await stack.enter_async_context(_two_hubs({
            "VELOCITY_LLM_BASE_URL": llm_url + "/v1", "COMFYUI_URLS": comfy_url,
            "VELOCITY_ASSET_DIR": str(tmp_path / "assets"), "VELOCITY_GPU_MODE": "split",
            "VELOCITY_COMFY_HEALTH_INTERVAL_S": "0.2"}))
        folder = tmp_path / "ipad"
        settings = await paired(first, folder, "t1-junior_broker")
        point_at(folder, f"http://127.0.0.1:{free_port()}")  # at the site: no network

        async with EdgeAgent(settings) as agent, _local(agent) as device:
            r = await device.post("/api/crm/leads", json={"values": {
                "person_id": "p-site-visit", "stage": "SITE_VISIT"}})
            assert r.status_code == 201, r.text
            r = await device.post("/api/gpu/requests/oracle",
                                  json={"question": "How many leads per stage?"})
            assert r.status_code == 201, r.text
            question = r.json()
            assert question["status"] == "requested" and question["owner_id"] == \
                "t1-junior_broker"
            refused = (await device.post("/api/gpu/requests/oracle", json={
                "question": "Delete every lead I have"})).json()
            render = (await device.post("/api/gpu/requests/dream-weaver", data={
                "room_type": "living_room", "style": "warm minimalist, oak and linen"},
                files={"image": ("room.png", PHOTO, "image/png")})).json()
            assert "photo" not in render and render["status"] == "requested"
            # bad input is refused on the device, before anything is written
            r = await device.post("/api/gpu/requests/dream-weaver", data={
                "room_type": "dungeon", "style": "gothic"},
                files={"image": ("room.png", PHOTO, "image/png")})
            assert r.status_code == 422
            r = await device.post("/api/gpu/requests/dream-weaver", data={
                "room_type": "bedroom", "style": "calm"},
                files={"image": ("room.gif", b"GIF89a....", "image/gif")})
            assert r.status_code == 422 and r.json()["error"] == "bad_image"
            assert (await device.post("/api/gpu/requests/oracle",
                                      json={"question": ""})).status_code == 422
            status = (await device.get("/status")).json()
            assert not status["online"]
            assert status["gpu_requests"]["by_status"] == {"requested": 3}
            assert [o["id"] for o in status["gpu_requests"]["open"]] == [
                question["id"], refused["id"], render["id"]]
            await asyncio.sleep(1.0)  # both hubs' watchers look: nothing has reached them
            assert await _jobs(first, question["id"]) == 0

        point_at(folder, first.url)  # back in range
        async with EdgeAgent(settings) as agent, _local(agent) as device:
            async def finished(request_id: str) -> bool:
                r = await device.get(f"/api/gpu/requests/{request_id}")
                return r.json()["status"] in ("done", "failed", "refused")

            for rid in (question["id"], refused["id"], render["id"]):
                await until(lambda rid=rid: finished(rid), 90, f"request {rid} finished")
            answer = (await device.get(f"/api/gpu/requests/{question['id']}")).json()
            assert answer["status"] == "done" and answer["progress"] == 1.0, answer
            assert answer["answer"]["columns"] == ["stage", "leads"]
            assert {"stage": "SITE_VISIT", "leads": 1} in answer["answer"]["rows"]
            assert answer["job_id"] and answer["finished_at"]
            no = (await device.get(f"/api/gpu/requests/{refused['id']}")).json()
            assert no["status"] == "refused" and "DELETE" in no["error"].upper(), no
            assert no["answer"] is None
            staged = (await device.get(f"/api/gpu/requests/{render['id']}")).json()
            assert staged["status"] == "done", staged
            assert staged["result_url"] == f"/api/dream-weaver/result/{staged['job_id']}"
            status = (await device.get("/status")).json()
            assert status["gpu_requests"] == {
                "by_status": {"done": 2, "refused": 1}, "open": []}
            listed = (await device.get("/api/gpu/requests", params={"status": "done"})).json()
            assert {r["id"] for r in listed} == {question["id"], render["id"]}

        # the render's PNG, for its owner, from either hub; the photo left the record
        owner = await login(second, "junior_broker@t1.test")
        async with httpx.AsyncClient(base_url=second.url, headers=owner) as http:
            r = await http.get(staged["result_url"])
            assert r.status_code == 200 and r.content in comfy.outputs.values()
        doc = await first.hub.store.document("t1", f"gpu_requests/{render['id']}")
        assert doc is not None
        row = await first.hub.db.pool.fetchrow(
            "SELECT photo, status FROM intel_gpu_requests WHERE id = $1", render["id"])
        assert row["photo"] is None and row["status"] == "done"
        # exactly one job per request although two hubs watched
        for rid in (question["id"], refused["id"], render["id"]):
            assert await _jobs(first, rid) == 1
        assert len(comfy.prompts) == 1


async def test_requests_the_user_may_not_make_are_refused_and_a_repeat_runs_once() -> None:
    llm = SglangStandIn(responder=_planner)
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(serve(llm.app()))
        first, _second = await stack.enter_async_context(_two_hubs({
            "VELOCITY_LLM_BASE_URL": llm_url + "/v1", "VELOCITY_GPU_MODE": "llm"}))
        device = await pair_device(first, "junior_broker@t1.test", "t1-junior_broker", 7301)
        await device.connect()
        asked = {"tenant_id": "t1", "kind": "oracle_question", "question": "Leads per stage?"}
        tampered = {
            "as another broker": ({**asked, "owner_id": "t1-senior_broker"}, "not_owner"),
            "with an outcome": ({**asked, "owner_id": "t1-junior_broker", "status": "done",
                                 "answer": '{"rows": []}'}, "gpu_outcome_by_hub"),
        }
        for n, (values, _) in enumerate(tampered.values()):
            await device.write(f"gpu_requests/bad{n}", values, f"u-bad{n}")
        await device.wait_for(lambda: len(device.refusals) == len(tampered))
        for n, (label, (_, reason)) in enumerate(tampered.items()):
            assert device.refusals[f"u-bad{n}"].reason == reason, label
            assert await first.hub.store.document("t1", f"gpu_requests/bad{n}") is None

        # a real request, its update pushed again (a device that lost the ACK): one job
        mine = {**asked, "owner_id": "t1-junior_broker"}
        update = await device.write("gpu_requests/r1", mine, "u-r1")
        await device.push([p.PushItem("u-r1-again", "gpu_requests/r1", update)])
        await device.wait_for(lambda: {"u-r1", "u-r1-again"} <= set(device.acks))

        def outcome() -> dict[str, Any]:
            return device.doc("gpu_requests/r1").content()

        await device.wait_for(lambda: outcome().get("status") == "done", 60)
        assert await _jobs(first, "r1") == 1
        assert '"columns":["stage","leads"]' in outcome()["answer"]
        # a hub that made a request's job and stopped before recording it: the job is found
        # again, not made twice
        asker = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, "north")
        made, _ = await first.hub.gpu.submit(asker, JobKind.ORACLE_QUESTION, {
            "question": "Leads per stage?", "role": "JUNIOR_BROKER", "team_id": "north"},
            "request:r3")
        await device.write("gpu_requests/r3", mine, "u-r3")
        await device.wait_for(lambda: device.doc("gpu_requests/r3").content().get("status")
                              == "done", 60)
        assert device.doc("gpu_requests/r3").content()["job_id"] == made.id
        assert await _jobs(first, "r3") == 1
        # once made, the request is fixed: the device may withdraw it, not change it
        await device.write("gpu_requests/r1", {"question": "Something else?",
                                               "status": "queued"}, "u-edit")
        await device.wait_for(lambda: "u-edit" in device.refusals)
        assert device.refusals["u-edit"].reason == "gpu_request_fixed"
        assert "question, status" in device.refusals["u-edit"].message
        # withdrawn while its job runs: the job is cancelled
        llm.delay_s = 15.0
        await device.write("gpu_requests/r2", {**mine, "question": "Slow one?"}, "u-r2")
        await device.wait_for(lambda: device.doc("gpu_requests/r2").content().get("status")
                              == "running", 30)
        await device.write("gpu_requests/r2", {"deleted": True}, "u-withdraw")
        await device.wait_for(lambda: "u-withdraw" in device.acks)

        async def job_status() -> str:
            status: str = await first.hub.db.pool.fetchval(
                "SELECT status FROM gpu_jobs WHERE idempotency_key = 'request:r2'")
            return status

        async def cancelled() -> bool:
            return await job_status() == "cancelled"

        await until(cancelled, 30, "the withdrawn request's job cancelled")
        await device.wait_for(lambda: device.doc("gpu_requests/r2").content().get("status")
                              == "cancelled", 30)
        llm.delay_s = 0.0
        # another broker never receives it (an Oracle answer is in its asker's scope)
        other = await pair_device(first, "senior_broker@t1.test", "t1-senior_broker", 7302)
        await other.connect()
        await asyncio.sleep(1.0)
        assert not any(g.startswith("gpu_requests/") for g in other.docs)
        await other.close()
        await device.close()
