"""Comms routes refuse bad input with a clear error and store nothing, on the hub and on the
device's local API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from core.identity import Principal, Role
from edge_agent.device import IDENTITY_FILE
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.store import create_many
from tests.commskit import waha_channel
from tests.hubkit import login, running_hub
from tests.standins.asgi import serve
from tests.standins.waha import WahaStandIn
from tests.test_comms_e2e import local_api

pytestmark = pytest.mark.anyio


async def test_hub_routes_refuse_bad_input() -> None:
    waha = WahaStandIn()
    async with running_hub() as server, serve(waha.app()) as url, httpx.AsyncClient(
            base_url=server.url, headers=await login(server, "junior_broker@t1.test")) as http:
        await waha_channel(server, waha, url)
        await create_many(server.hub.writer, Principal("t1", "t1-admin", Role.ADMIN), [
            ("people", "p-other", {"tenant_id": "t1", "full_name": "Theirs",
                                   "owner_id": "t1-junior2", "team_id": "south"})])
        pool = server.hub.db.pool
        for body, status in (
                ({"channel_id": "wa-main", "phone": "call me"}, 422),
                ({"channel_id": "wa-main", "phone": "12345"}, 422),
                ({"channel_id": "nope", "phone": "+91 98765 43210"}, 404),
                ({"channel_id": "wa-main"}, 422),
                ({"channel_id": "wa-main", "phone": "+91 98765 43210", "person_id": "nobody"},
                 404)):
            r = await http.post("/api/comms/threads", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["detail"]
        assert await pool.fetchval("SELECT count(*) FROM comms_threads") == 0

        r = await http.post("/api/comms/threads", json={"channel_id": "wa-main",
                                                        "phone": "+91 98765 43210"})
        assert r.status_code == 201 and r.json()["person_id"] is None
        thread_id = r.json()["id"]
        for path, body, status in (
                (f"/api/comms/threads/{thread_id}/messages", {"body": ""}, 422),
                (f"/api/comms/threads/{thread_id}/messages", {"body": "x" * 5000}, 422),
                (f"/api/comms/threads/{thread_id}/messages", {"text": "hi"}, 422),
                ("/api/comms/threads/no-such/messages", {"body": "hi"}, 404),
                (f"/api/comms/threads/{thread_id}/notes", {"text": "unlinked"}, 409),
                (f"/api/comms/threads/{thread_id}/link-person", {"person_id": "nobody"}, 404),
                (f"/api/comms/threads/{thread_id}/tasks", {"title": ""}, 422),
                (f"/api/comms/threads/{thread_id}/tasks",
                 {"title": "x", "due_at": "someday"}, 422)):
            r = await http.post(path, json=body)
            assert r.status_code == status, (path, body, r.text)
        assert await pool.fetchval("SELECT count(*) FROM comms_messages") == 0
        assert await pool.fetchval("SELECT count(*) FROM crm_tasks") == 0
        # a broker's own conversation links to any client the broker may read
        r = await http.post(f"/api/comms/threads/{thread_id}/link-person",
                            json={"person_id": "p-other"})
        assert r.status_code == 200, r.text  # junior may read every client, and owns the thread
        r = await http.post(f"/api/comms/threads/{thread_id}/notes",
                            json={"text": "Asked for the payment plan"})
        assert r.status_code == 201 and r.json()["kind"] == "note", r.text
        assert r.json()["person_id"] == "p-other" and r.json()["thread_id"] == thread_id

        admin = await login(server, "admin@t1.test")
        for body in ({"channel_id": "x", "provider": "sms", "account": "a",
                      "base_url": "http://h", "api_key": "k", "webhook_secret": "s" * 16,
                      "owner_id": "u"},
                     {"channel_id": "x", "provider": "waha", "account": "a",
                      "base_url": "not a url", "api_key": "k", "webhook_secret": "s" * 16,
                      "owner_id": "u"},
                     {"channel_id": "x", "provider": "waha", "account": "a",
                      "base_url": "http://h", "api_key": "k", "webhook_secret": "short",
                      "owner_id": "u"}):
            r = await http.patch("/api/comms/settings", json=body, headers=admin)
            assert r.status_code == 422, r.text
        taken = {"channel_id": "wa-2", "provider": "waha", "account": waha.session,
                 "base_url": url, "api_key": "k", "webhook_secret": "s" * 16, "owner_id": "u"}
        r = await http.patch("/api/comms/settings", json=taken, headers=admin)
        assert r.status_code == 409 and "already a channel" in r.json()["detail"]
        r = await http.get("/api/comms/settings", headers=admin)
        assert [c["channel_id"] for c in r.json()["channels"]] == ["wa-main"]
        assert "api_key" not in r.json()["channels"][0]
        assert "webhook_secret" not in r.json()["channels"][0]


def _offline_device(folder: Path) -> EdgeSettings:
    folder.mkdir(parents=True)
    (folder / IDENTITY_FILE).write_text(json.dumps({
        "device_id": "dev", "tenant_id": "t1", "user_id": "u1", "hub_url": "http://127.0.0.1:9",
        "client_id": 4242, "kind": "ipad"}))
    return EdgeSettings(data_dir=folder)


async def test_device_routes_refuse_bad_input_offline(tmp_path: Path) -> None:
    async with EdgeAgent(_offline_device(tmp_path / "dev")) as agent, local_api(agent) as api:
        r = await api.post("/api/crm/people", json={"values": {
            "full_name": "Kabir Shah", "primary_phone": "+91 99200 11223"}})
        kabir = r.json()["id"]
        for body, status in (({"channel_id": "wa-main", "phone": "not a phone"}, 422),
                             ({"phone": "+91 99200 11223"}, 422)):
            r = await api.post("/api/comms/threads", json=body)
            assert r.status_code == status, r.text
        r = await api.post("/api/comms/threads", json={"channel_id": "wa-main",
                                                       "phone": "99200-11223"})
        assert r.status_code == 201 and r.json()["person_id"] == kabir, r.text
        thread_id = r.json()["id"]
        assert (await api.post("/api/comms/threads/nope/messages",
                               json={"body": "hi"})).status_code == 404
        assert (await api.post(f"/api/comms/threads/{thread_id}/messages",
                               json={"body": ""})).status_code == 422
        r = await api.post(f"/api/comms/threads/{thread_id}/link-person",
                           json={"person_id": "nobody"})
        assert r.status_code == 404
        r = await api.post(f"/api/comms/threads/{thread_id}/messages", json={"body": "Hi Kabir"})
        assert r.status_code == 201 and r.json()["status"] == "queued"
        assert r.json()["author_id"] == "u1" and r.json()["owner_id"] == "u1"
        listed = (await api.get(f"/api/comms/threads/{thread_id}/messages")).json()
        assert [m["body"] for m in listed] == ["Hi Kabir"]
        assert (await api.get("/api/comms/threads", headers={"Authorization": "x"})
                ).status_code == 401
