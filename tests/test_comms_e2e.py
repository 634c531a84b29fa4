"""The broker's offline day, comms: a message written offline on an iPad is sent by the hub
after reconnect through the provider (a WAHA stand-in), and its delivery status comes back to
both devices; a client's reply arrives on the broker's iPad in the same conversation, linked
to the client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from hub.store import create_many
from tests.commskit import waha_channel
from tests.hubkit import running_hub
from tests.reliability.kit import paired, until
from tests.standins.asgi import serve
from tests.standins.waha import WahaStandIn

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def local_api(agent: EdgeAgent) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_local_app(agent))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge", headers={
            "Authorization": f"Bearer {agent.token}"}) as http:
        yield http


async def _rows(agent: EdgeAgent, sql: str, *params: Any) -> list[dict[str, Any]]:
    return await agent.replica.query(sql, params)


async def test_offline_message_is_sent_after_reconnect_and_its_status_reaches_both_edges(
        tmp_path: Path) -> None:
    waha = WahaStandIn()
    async with running_hub() as server, serve(waha.app()) as url:
        await waha_channel(server, waha, url)
        await create_many(server.hub.writer, Principal("t1", "t1-admin", Role.ADMIN), [
            ("people", "p-meera", {"tenant_id": "t1", "full_name": "Meera Iyer",
                                   "primary_phone": "+91 98450 67890",
                                   "owner_id": "t1-junior_broker", "team_id": "north"}),
            ("people", "p-arjun", {"tenant_id": "t1", "full_name": "Arjun Rao",
                                   "primary_phone": "0091 99000 12121",
                                   "owner_id": "t1-junior_broker", "team_id": "north"})])
        broker = await paired(server, tmp_path / "broker-ipad", "t1-junior_broker")
        director = await paired(server, tmp_path / "director-ipad", "t1-sales_director")

        # Online once: the iPad holds its clients (its cursor, stored with what it pulled, has
        # reached the hub's last sequence).
        last_seq = await server.hub.db.pool.fetchval(
            "SELECT last_seq FROM hub_tenants WHERE tenant_id = 't1'")
        async with EdgeAgent(broker) as ipad:
            await until(lambda: _cursor_at(ipad, last_seq), what="clients pulled")

        # At the site, offline: a conversation opened by phone number (linked to Meera by it)
        # and a message, queued on the device.
        async with EdgeAgent(broker, sync=False) as offline, local_api(offline) as api:
            r = await api.post("/api/comms/threads", json={"channel_id": "wa-main",
                                                           "phone": "098450 67890"})
            assert r.status_code == 201, r.text
            thread = r.json()
            assert thread["person_id"] == "p-meera" and thread["phone"] == "+919845067890"
            r = await api.post(f"/api/comms/threads/{thread['id']}/messages",
                               json={"body": "Sharing the Tower B floor plan now"})
            assert r.status_code == 201 and r.json()["status"] == "queued", r.text
            message_id = r.json()["id"]
            r = await api.post(f"/api/comms/threads/{thread['id']}/notes",
                               json={"text": "Wants east-facing, budget 2.4 Cr"})
            assert r.status_code == 201 and r.json()["thread_id"] == thread["id"], r.text
            r = await api.post(f"/api/comms/threads/{thread['id']}/tasks",
                               json={"title": "Send floor plan PDF"})
            assert r.status_code == 201 and r.json()["person_id"] == "p-meera", r.text
        assert waha.requests == 0

        # Back online: the hub sends it, the provider reports delivery and reading.
        async with EdgeAgent(broker) as ipad, EdgeAgent(director) as boss:
            await until(lambda: _sent(waha), what="sent by the hub")
            assert waha.sent == [{"chatId": "919845067890@c.us",
                                  "text": "Sharing the Tower B floor plan now",
                                  "id": waha.sent[0]["id"]}]
            for agent in (ipad, boss):
                await until(lambda a=agent: _status(a, message_id, "sent"), what="sent")
            for ack in (2, 3):
                r = await waha.deliver(waha.ack_event(waha.sent[0]["id"], ack))
                assert r.status_code == 200 and r.json()["statuses"] == 1, r.text
            for agent in (ipad, boss):
                await until(lambda a=agent: _status(a, message_id, "read"), what="read")

            # Meera answers: the reply joins the broker's conversation on the iPad.
            r = await waha.deliver(waha.message_event("919845067890", "Thanks! Sunday works",
                                                      name="Meera"))
            assert r.status_code == 200 and len(r.json()["stored"]) == 1, r.text
            reply_id = r.json()["stored"][0]
            await until(lambda: _has(ipad, "comms_messages", reply_id), what="reply on iPad")
            async with local_api(ipad) as api:
                listed = (await api.get(f"/api/comms/threads/{thread['id']}/messages")).json()
                assert [(m["direction"], m["status"], m["body"]) for m in listed] == [
                    ("outbound", "read", "Sharing the Tower B floor plan now"),
                    ("inbound", "received", "Thanks! Sunday works")]
                threads = (await api.get("/api/comms/threads")).json()
                assert [(t["id"], t["person_id"]) for t in threads] == [
                    (thread["id"], "p-meera")]

            # A client who writes first: the hub opens the conversation, linked to him and
            # owned by his broker, and it reaches the broker's iPad with his voice note.
            r = await waha.deliver(waha.message_event("919900012121", "",
                                                      voice_url=f"{url}/files/v1.oga"))
            voice_id = r.json()["stored"][0]
            await until(lambda: _has(ipad, "comms_messages", voice_id), what="voice note")
            async with local_api(ipad) as api:
                threads = (await api.get("/api/comms/threads", params={
                    "person_id": "p-arjun"})).json()
                assert [(t["phone"], t["owner_id"]) for t in threads] == [
                    ("+919900012121", "t1-junior_broker")]
                listed = (await api.get(f"/api/comms/threads/{threads[0]['id']}/messages")
                          ).json()
                assert [(m["media_url"], m["status"]) for m in listed] == [
                    (f"{url}/files/v1.oga", "received")]
            assert len(waha.sent) == 1


async def _has(agent: EdgeAgent, collection: str, record_id: str) -> bool:
    """The record is in the edge's projection (what its local API lists), not only in its
    live document, which is applied before the projection row is written."""
    table = f"temp.{collection}"  # a fixed collection name of this test, not input
    return bool(await _rows(agent, f"SELECT id FROM {table} WHERE id = ?", record_id))


async def _status(agent: EdgeAgent, message_id: str, status: str) -> bool:
    rows = await _rows(agent, "SELECT status FROM temp.comms_messages WHERE id = ?", message_id)
    return rows == [{"status": status}]


async def _cursor_at(agent: EdgeAgent, seq: int) -> bool:
    return await agent.replica.cursor() >= seq


async def _sent(waha: WahaStandIn) -> bool:
    return len(waha.sent) == 1
