"""Provider webhooks on a running hub: signed or refused, stored once, linked to their person,
malformed ones refused with nothing stored; delivery reports move a message on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from hub.server import HubServer
from hub.store import create_many
from tests.commskit import evolution_channel, waha_channel
from tests.hubkit import login, running_hub
from tests.standins.asgi import serve
from tests.standins.evolution import EvolutionStandIn
from tests.standins.waha import WahaStandIn

pytestmark = pytest.mark.anyio
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)


async def _counts(server: HubServer) -> tuple[int, int, int]:
    pool = server.hub.db.pool
    return (await pool.fetchval("SELECT count(*) FROM comms_messages"),
            await pool.fetchval("SELECT count(*) FROM comms_threads"),
            await pool.fetchval("SELECT count(*) FROM hub_updates WHERE guid LIKE 'comms_%'"))


async def _people(server: HubServer) -> None:
    await create_many(server.hub.writer, DIRECTOR, [
        ("people", "p-zara", {"tenant_id": "t1", "full_name": "Zara Khan",
                              "primary_phone": "098765 43210", "owner_id": "t1-senior_broker",
                              "team_id": "north"}),
        ("people", "p-twin-a", {"tenant_id": "t1", "full_name": "Twin A",
                                "primary_phone": "+91 90000 11111"}),
        ("people", "p-twin-b", {"tenant_id": "t1", "full_name": "Twin B",
                                "primary_phone": "90000-11111"}),
    ])


async def test_waha_inbound_is_stored_once_linked_to_its_person() -> None:
    waha = WahaStandIn()
    async with running_hub() as server, serve(waha.app()) as url:
        await waha_channel(server, waha, url)
        await _people(server)
        event = waha.message_event("919876543210", "Is the 3BHK in Tower B still free?",
                                   name="Zara")
        first, again = await asyncio.gather(waha.deliver(event), waha.deliver(event))
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert sorted([len(first.json()["stored"]), len(again.json()["stored"])]) == [0, 1]
        assert (await waha.deliver(event)).json() == {
            "stored": [], "duplicates": 1, "statuses": 0, "ignored": 0}
        pool = server.hub.db.pool
        rows = await pool.fetch("SELECT * FROM comms_messages")
        assert len(rows) == 1 and rows[0]["body"] == "Is the 3BHK in Tower B still free?"
        assert rows[0]["direction"] == "inbound" and rows[0]["status"] == "received"
        thread = await pool.fetchrow("SELECT * FROM comms_threads")
        assert thread["phone"] == "+919876543210" and thread["person_id"] == "p-zara"
        # the conversation is Zara's broker's, and so is the message
        assert thread["owner_id"] == rows[0]["owner_id"] == "t1-senior_broker"

        # a shared number (two people) is not guessed: the conversation stays unlinked and
        # goes to the channel's broker
        await waha.deliver(waha.message_event("919000011111", "hello"))
        shared = await pool.fetchrow("SELECT * FROM comms_threads WHERE phone = '+919000011111'")
        assert shared["person_id"] is None and shared["owner_id"] == "t1-junior_broker"

        # a voice note is a reference to the provider's file, not the file
        await waha.deliver(waha.message_event("919876543210", "", voice_url=f"{url}/f/1.oga"))
        voice = await pool.fetchrow("SELECT * FROM comms_messages WHERE media_url IS NOT NULL")
        assert voice["media_url"] == f"{url}/f/1.oga" and voice["media_type"].startswith("audio")
        assert voice["thread_id"] == thread["id"]


async def test_a_conversation_is_linked_when_its_person_arrives_later() -> None:
    waha = WahaStandIn()
    async with running_hub() as server, serve(waha.app()) as url:
        await waha_channel(server, waha, url)
        await waha.deliver(waha.message_event("919811122233", "hi"))
        pool = server.hub.db.pool
        assert await pool.fetchval("SELECT person_id FROM comms_threads") is None
        await create_many(server.hub.writer, DIRECTOR, [
            ("people", "p-late", {"tenant_id": "t1", "full_name": "Late",
                                  "primary_phone": "+91 98111 22233"})])
        await waha.deliver(waha.message_event("919811122233", "still there?"))
        assert await pool.fetchval("SELECT person_id FROM comms_threads") == "p-late"
        assert await pool.fetchval("SELECT count(*) FROM comms_threads") == 1


async def test_waha_webhooks_without_the_right_signature_are_refused() -> None:
    waha = WahaStandIn()
    async with running_hub() as server, serve(waha.app()) as url:
        await waha_channel(server, waha, url)
        for headers in ({},  # unsigned
                        {"X-Webhook-Hmac": "0" * 128, "X-Webhook-Hmac-Algorithm": "sha512"},
                        {"X-Webhook-Hmac": "abc", "X-Webhook-Hmac-Algorithm": "sha256"}):
            r = await waha.deliver(waha.message_event("919876543210", "hi"), headers=headers)
            assert r.status_code == 401 and r.json()["error"] == "webhook_refused"
        # signed with another channel's key, or sent to an unknown channel / another provider
        other = WahaStandIn(hmac_key="someone-elses-hmac-key")
        other.webhook_url = waha.webhook_url
        assert (await other.deliver(waha.message_event("919876543210", "hi"))).status_code == 401
        for wrong in ("waha?channel=nope", "evolution?channel=wa-main", "sms?channel=wa-main"):
            other.webhook_url = f"{server.url}/api/comms/webhooks/{wrong}"
            other.hmac_key = waha.hmac_key
            assert (await other.deliver(waha.message_event("91987654321", "x"))).status_code == 401
        assert await _counts(server) == (0, 0, 0)


async def test_evolution_webhooks_need_the_channel_secret() -> None:
    evo = EvolutionStandIn()
    async with running_hub() as server, serve(evo.app()) as url:
        await evolution_channel(server, evo, url)
        event = evo.upsert_event("919876543210", "namaste")
        for headers in ({}, {"Authorization": "Bearer wrong-secret"}, {"apikey": evo.api_key}):
            assert (await evo.deliver(event, headers=headers)).status_code == 401
        assert await _counts(server) == (0, 0, 0)
        r = await evo.deliver(event)
        assert r.status_code == 200 and len(r.json()["stored"]) == 1
        assert (await evo.deliver(event)).json()["duplicates"] == 1
        await evo.deliver(evo.upsert_event("919876543210", voice_url="https://mmg.example/a.enc"))
        rows = await server.hub.db.pool.fetch("SELECT body, media_url, media_seconds FROM "
                                              "comms_messages ORDER BY media_url NULLS FIRST")
        assert [tuple(r) for r in rows] == [("namaste", None, None),
                                            ("", "https://mmg.example/a.enc", 14)]


def _malformed(waha: WahaStandIn) -> list[tuple[bytes, int]]:
    good = waha.message_event("919876543210", "hi")
    no_id = json.loads(json.dumps(good))
    del no_id["payload"]["id"]
    bad_ts = json.loads(json.dumps(good))
    bad_ts["payload"]["timestamp"] = "yesterday"
    far = json.loads(json.dumps(good))
    far["payload"]["timestamp"] = 10**15
    other_session = {**good, "session": "someone-else"}
    long_body = json.loads(json.dumps(good))
    long_body["payload"]["body"] = "x" * 5000
    return [(b"{not json", 422), (b"\xff\xfe", 422), (json.dumps([1, 2]).encode(), 422),
            (json.dumps({"event": "message"}).encode(), 422),
            (json.dumps(no_id).encode(), 422), (json.dumps(bad_ts).encode(), 422),
            (json.dumps(far).encode(), 422),
            (json.dumps(other_session).encode(), 422), (json.dumps(long_body).encode(), 422)]


async def test_malformed_payloads_are_refused_and_nothing_is_stored() -> None:
    waha = WahaStandIn()
    async with running_hub() as server, serve(waha.app()) as url:
        await waha_channel(server, waha, url)
        for body, status in _malformed(waha):
            r = await waha.deliver({}, body=body, headers=waha.sign(body))
            assert r.status_code == status, (body[:60], r.text)
            assert r.json()["error"] in ("invalid_webhook", "invalid_record"), r.text
        assert await _counts(server) == (0, 0, 0)
        # events the hub does not use are accepted and ignored
        status_event = {"event": "session.status", "session": "default",
                        "payload": {"status": "WORKING"}}
        r = await waha.deliver(status_event)
        assert r.status_code == 200 and r.json()["stored"] == []


async def test_delivery_reports_move_a_message_forward_only() -> None:
    evo = EvolutionStandIn()
    async with running_hub() as server, serve(evo.app()) as url:
        await evolution_channel(server, evo, url)
        await create_many(server.hub.writer, DIRECTOR, [
            ("people", "p1", {"tenant_id": "t1", "full_name": "Asha",
                              "primary_phone": "+91 99999 00001"})])
        junior = await login(server, "junior_broker@t1.test")
        async with httpx.AsyncClient(base_url=server.url, headers=junior) as http:
            r = await http.post("/api/comms/threads", json={"channel_id": "evo-main",
                                                            "phone": "99999 00001"})
            assert r.status_code == 201, r.text
            thread: dict[str, Any] = r.json()
            assert thread["person_id"] == "p1" and thread["phone"] == "+919999900001"
            r = await http.post(f"/api/comms/threads/{thread['id']}/messages",
                                json={"body": "Site visit at 11 tomorrow?"})
            assert r.status_code == 201 and r.json()["status"] == "queued"
            message_id = r.json()["id"]

            async def status() -> str:
                r = await http.get(f"/api/comms/threads/{thread['id']}/messages")
                return str(r.json()[0]["status"])
            for _ in range(100):
                if await status() == "sent":
                    break
                await asyncio.sleep(0.1)
            assert await status() == "sent" and len(evo.sent) == 1
            key_id = evo.sent[0]["id"]
            assert evo.sent[0] == {"number": "919999900001", "text": "Site visit at 11 tomorrow?",
                                   "id": key_id}
            for report, expected in (("READ", "read"), ("DELIVERY_ACK", "read"),
                                     ("SERVER_ACK", "read"), ("ERROR", "read")):
                r = await evo.deliver(evo.update_event(key_id, report))
                assert r.status_code == 200
                assert await status() == expected
            row = await server.hub.db.pool.fetchrow(
                "SELECT provider_message_id, author_id FROM comms_messages WHERE id = $1",
                message_id)
            assert tuple(row) == (key_id, "t1-junior_broker")
