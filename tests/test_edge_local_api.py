"""The device's loopback API: what a broker does offline, behind the local token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from edge_agent.device import IDENTITY_FILE
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings

pytestmark = pytest.mark.anyio


def _offline_device(folder: Path) -> EdgeSettings:
    """A paired device whose hub is unreachable (nothing listens on port 9)."""
    folder.mkdir(parents=True)
    (folder / IDENTITY_FILE).write_text(json.dumps({
        "hub_url": "http://127.0.0.1:9", "device_id": "d1", "tenant_id": "t1",
        "user_id": "u1", "kind": "ipad", "client_id": 4242}))
    return EdgeSettings(data_dir=folder, backoff_cap_s=0.2)


async def test_broker_works_offline_through_the_local_api(tmp_path: Path) -> None:
    async with EdgeAgent(_offline_device(tmp_path / "dev")) as agent:
        transport = httpx.ASGITransport(app=create_local_app(agent))
        auth = {"Authorization": f"Bearer {agent.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
            assert (await http.get("/status")).status_code == 401
            r = await http.post("/api/crm/people", headers=auth,
                                json={"values": {"full_name": "Zara Khan", "city": "Dubai"}})
            assert r.status_code == 201, r.text
            person = r.json()
            assert person["tenant_id"] == "t1" and person["owner_id"] == "u1"
            r = await http.post("/api/crm/leads", headers=auth,
                                json={"values": {"person_id": person["id"]}})
            lead = r.json()
            r = await http.post(f"/api/crm/leads/{lead['id']}/stage", headers=auth,
                                json={"stage": "SITE_VISIT"})
            assert r.json()["stage"] == "SITE_VISIT"
            await http.post("/api/crm/interactions", headers=auth, json={"values": {
                "person_id": person["id"], "kind": "note",
                "occurred_at": "2026-11-25T10:00:00Z", "body": "Loved the terrace."}})
            await http.post("/api/crm/tasks", headers=auth, json={"values": {
                "title": "Send cost sheet", "person_id": person["id"]}})
            bad = await http.patch(f"/api/crm/people/{person['id']}", headers=auth,
                                   json={"values": {"full_name": ""}})
            assert bad.status_code == 422 and "full_name" in bad.text
            found = (await http.get("/api/crm/contacts?q=zara", headers=auth)).json()
            assert [c["full_name"] for c in found] == ["Zara Khan"]
            c360 = (await http.get(f"/api/crm/client-360/{person['id']}", headers=auth)).json()
            assert c360["leads"][0]["stage"] == "SITE_VISIT"
            assert c360["interactions"][0]["kind"] == "note"
            assert c360["tasks"][0]["title"] == "Send cost sheet"
            status = (await http.get("/status", headers=auth)).json()
            assert status["online"] is False
            assert status["pending_updates"] == 6  # person, lead, stage, history, note, task
            assert (await http.get("/api/crm/client-360/nope", headers=auth)).status_code == 404
