"""The hub's sender on a running hub: retries what surely did not go out, gives up on what the
provider refuses, and never sends a message twice, across a restart in the middle of a send."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from core.identity import Principal, Role
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import create_many
from tests.commskit import waha_channel
from tests.hubkit import login, running_hub
from tests.reliability.kit import until
from tests.standins.asgi import serve
from tests.standins.waha import WahaStandIn

pytestmark = pytest.mark.anyio


async def _thread(server: HubServer, http: httpx.AsyncClient) -> str:
    await create_many(server.hub.writer, Principal("t1", "t1-admin", Role.ADMIN), [
        ("people", "p1", {"tenant_id": "t1", "full_name": "Ravi", "owner_id": "t1-junior_broker",
                          "primary_phone": "+91 98200 12345"})])
    r = await http.post("/api/comms/threads", json={"channel_id": "wa-main",
                                                    "phone": "9820012345"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _message(server: HubServer, message_id: str) -> dict[str, Any]:
    row = await server.hub.db.pool.fetchrow("SELECT * FROM comms_messages WHERE id = $1",
                                            message_id)
    return dict(row) if row else {}


async def _queue(http: httpx.AsyncClient, thread_id: str, text: str) -> str:
    r = await http.post(f"/api/comms/threads/{thread_id}/messages", json={"body": text})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_unavailable_is_retried_refused_is_not_and_retries_end() -> None:
    waha = WahaStandIn()
    async with running_hub() as server, serve(waha.app()) as url, httpx.AsyncClient(
            base_url=server.url, headers=await login(server, "junior_broker@t1.test")) as http:
        sender = server.hub.comms_sender
        sender.backoff_base_s, sender.max_attempts = 0.05, 3
        await waha_channel(server, waha, url)
        thread_id = await _thread(server, http)

        waha.fail_next = [503, 500]  # the session is restarting: nothing went out
        retried = await _queue(http, thread_id, "Brochure attached")
        await until(lambda: _status_is(server, retried, "sent"), what="sent after retries")
        assert waha.requests == 3 and [m["text"] for m in waha.sent] == ["Brochure attached"]
        assert waha.sent[0]["chatId"] == "919820012345@c.us"
        assert (await _message(server, retried))["provider_message_id"] == waha.sent[0]["id"]

        waha.fail_next = [400]  # the provider says no: retrying cannot help
        refused = await _queue(http, thread_id, "x")
        await until(lambda: _status_is(server, refused, "failed"), what="refused")
        assert waha.requests == 4 and "400" in (await _message(server, refused))["error"]

        waha.fail_next = [503] * 5
        given_up = await _queue(http, thread_id, "y")
        await until(lambda: _status_is(server, given_up, "failed"), what="given up")
        assert waha.requests == 7
        assert "after 3 attempts" in (await _message(server, given_up))["error"]
        assert len(waha.sent) == 1

        # The provider reports delivery before it answers the send: the report is kept and
        # applied once the send is recorded.
        waha.fail_next, waha.ack_before_answer = [], 2
        overtaken = await _queue(http, thread_id, "z")
        await until(lambda: _status_is(server, overtaken, "delivered"), what="early report")
        assert (await _message(server, overtaken))["provider_message_id"] == waha.sent[-1]["id"]


async def _status_is(server: HubServer, message_id: str, status: str) -> bool:
    return (await _message(server, message_id)).get("status") == status


async def test_a_restart_never_sends_a_message_twice() -> None:
    waha = WahaStandIn()
    async with serve(waha.app()) as url:
        async with running_hub() as server, httpx.AsyncClient(
                base_url=server.url, headers=await login(server, "junior_broker@t1.test")
        ) as http:
            database_url = server.hub.database_url
            await waha_channel(server, waha, url)
            thread_id = await _thread(server, http)
            sent = await _queue(http, thread_id, "one")
            await until(lambda: _status_is(server, sent, "sent"))

            # This one will have been answered by the provider, the hub stopping before it
            # recorded the answer (set below, once the hub is down).
            server.hub.comms_sender.backoff_base_s, waha.fail_next = 60, [503]
            answered = await _queue(http, thread_id, "three")
            await until(lambda: _state_is(server, answered, "retry"), what="retry")
            # The hub stops while the provider holds this request: it may or may not have gone.
            waha.delay_s = 3
            in_flight = await _queue(http, thread_id, "two")
            await until(lambda: _state_is(server, in_flight, "sending"), what="claimed")
        requests = waha.requests
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "UPDATE hub_comms_outbound SET state = 'sent', provider_message_id = "
                "'true_919820012345@c.us_PRE', attempts = 2 WHERE message_id = $1", answered)
            # the lease of the stopped hub's claim runs out
            await conn.execute("UPDATE hub_comms_outbound SET updated_at = now() - interval "
                               "'1 hour' WHERE state = 'sending'")
        finally:
            await conn.close()

        # Later (beyond the claim's lease), a hub starts on the same database.
        hub = Hub(HubSettings(database_url=database_url, sandbox_workers=1))
        async with HubServer(hub, host="127.0.0.1", port=0) as again:
            await until(lambda: _status_is(again, in_flight, "failed"), what="unknown outcome")
            await until(lambda: _status_is(again, answered, "sent"), what="recorded")
            assert "outcome unknown" in (await _message(again, in_flight))["error"]
            assert (await _message(again, answered))["provider_message_id"] == \
                "true_919820012345@c.us_PRE"
            await asyncio.sleep(1.5)  # a few sender rounds
            assert waha.requests == requests  # nothing was sent again
            assert (await _message(again, sent))["status"] == "sent"


async def _state_is(server: HubServer, message_id: str, state: str) -> bool:
    return await server.hub.db.pool.fetchval(
        "SELECT state FROM hub_comms_outbound WHERE message_id = $1", message_id) == state
