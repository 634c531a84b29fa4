"""Presence across hubs: Yjs clients of one canvas page connected to two hub processes on one
PostgreSQL see each other's awareness — live changes, the states of those already there when
they join, and a client leaving."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from typing import Any

import httpx
import pytest
import websockets

from sync import yws
from tests.hubkit import login, running_hub

pytestmark = pytest.mark.anyio
LIMIT = 1 << 20


class PresenceClient:
    """A y-websocket speaker on one hub, collecting the awareness states it receives."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.states: dict[int, dict[str, Any] | None] = {}
        self.heard: Counter[int] = Counter()
        """Entries received per client id."""
        self.received = asyncio.Event()
        self.joined = asyncio.Event()
        """The hub's first sync message came: the session is in the page's room."""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            message = yws.decode(frame, LIMIT)  # type: ignore[arg-type]
            if isinstance(message, yws.Awareness):
                for e in message.entries:
                    self.states[e.client_id] = json.loads(e.state)
                    self.heard[e.client_id] += 1
                self.received.set()
            elif isinstance(message, yws.Sync):
                self.joined.set()

    async def announce(self, client_id: int, clock: int, state: dict[str, Any] | None) -> None:
        await self.ws.send(yws.encode_awareness(
            [yws.AwarenessEntry(client_id, clock, json.dumps(state))]))

    async def sees(self, client_id: int, state: dict[str, Any] | None,
                   timeout: float = 10.0) -> None:
        async def wait() -> None:
            while self.states.get(client_id, "absent") != state:
                self.received.clear()
                await self.received.wait()
        await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await self._reader


def _url(server: Any, page_id: str, headers: dict[str, str]) -> str:
    return (server.url.replace("http", "ws") + f"/api/oracle/v1/ws/oracle/canvas/{page_id}"
            f"?token={headers['Authorization'][7:]}")


async def _client(server: Any, page_id: str, headers: dict[str, str]) -> PresenceClient:
    return PresenceClient(await websockets.connect(_url(server, page_id, headers)))


async def test_awareness_reaches_clients_on_another_hub() -> None:
    async with running_hub() as first, running_hub(first.hub.database_url) as second, \
            httpx.AsyncClient(base_url=first.url) as http:
        owner = await login(first, "junior_broker@t1.test")
        editor = await login(second, "senior_broker@t1.test")
        r = await http.post("/api/oracle/v1/canvas-pages", headers=owner, json={"values": {
            "title": "Launch review", "editors": ["t1-senior_broker"]}})
        assert r.status_code == 201, r.text
        page_id = r.json()["id"]

        asha = await _client(first, page_id, owner)
        await asha.announce(11, 1, {"user": {"name": "Asha"}})
        # Ravi joins on the other hub after Asha: her state comes to him on joining
        ravi = await _client(second, page_id, editor)
        await ravi.sees(11, {"user": {"name": "Asha"}})
        # live changes both ways
        await ravi.announce(22, 1, {"user": {"name": "Ravi"}, "cursor": 4})
        await asha.sees(22, {"user": {"name": "Ravi"}, "cursor": 4})
        await asha.announce(11, 2, {"user": {"name": "Asha"}, "cursor": 9})
        await ravi.sees(11, {"user": {"name": "Asha"}, "cursor": 9})
        # a third client on the second hub joins while both are there: it sees both
        mira = await _client(second, page_id, editor)
        await mira.sees(11, {"user": {"name": "Asha"}, "cursor": 9})
        await mira.sees(22, {"user": {"name": "Ravi"}, "cursor": 4})
        # Asha disconnects from the first hub: the others see her leave
        await asha.close()
        await ravi.sees(11, None)
        await mira.sees(11, None)
        # another page's clients hear nothing of this one
        r = await http.post("/api/oracle/v1/canvas-pages", headers=owner, json={"values": {
            "title": "Other", "editors": ["t1-senior_broker"]}})
        other = await _client(first, r.json()["id"], owner)
        await ravi.announce(22, 2, {"user": {"name": "Ravi"}, "cursor": 5})
        await mira.sees(22, {"user": {"name": "Ravi"}, "cursor": 5})
        await asyncio.sleep(0.3)
        assert 22 not in other.states
        for c in (ravi, mira, other):
            await c.close()


async def test_echoed_states_are_not_passed_on_nor_taken_away_by_the_echoer() -> None:
    """A y-websocket client sends back every awareness state it receives: the hub passes on
    none of those echoes (20 clients would otherwise make each change 19 × 19 frames), and
    the echoing client leaving does not take the owner's presence with it."""
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        owner = await login(server, "junior_broker@t1.test")
        r = await http.post("/api/oracle/v1/canvas-pages", headers=owner,
                            json={"values": {"title": "Echoes"}})
        page_id = r.json()["id"]
        asha, ravi, mira = [await _client(server, page_id, owner) for _ in range(3)]
        for c in (asha, ravi, mira):
            await asyncio.wait_for(c.joined.wait(), 10)
        await asha.announce(11, 1, {"user": {"name": "Asha"}})
        await ravi.sees(11, {"user": {"name": "Asha"}})
        await ravi.announce(11, 1, {"user": {"name": "Asha"}})  # the echo
        await ravi.announce(22, 1, {"user": {"name": "Ravi"}})
        await asha.sees(22, {"user": {"name": "Ravi"}})
        await mira.sees(22, {"user": {"name": "Ravi"}})
        assert asha.heard[11] == 0 and mira.heard[11] == 1
        await ravi.close()
        await mira.sees(22, None)
        assert mira.states[11] == {"user": {"name": "Asha"}}
        # a change of Asha's is news again
        await asha.announce(11, 2, {"user": {"name": "Asha"}, "cursor": 3})
        await mira.sees(11, {"user": {"name": "Asha"}, "cursor": 3})
        for c in (asha, mira):
            await c.close()


async def test_a_client_without_access_never_hears_the_pages_presence() -> None:
    async with running_hub() as first, running_hub(first.hub.database_url) as second, \
            httpx.AsyncClient(base_url=first.url) as http:
        owner = await login(first, "junior_broker@t1.test")
        stranger = await login(second, "junior2@t1.test")
        r = await http.post("/api/oracle/v1/canvas-pages", headers=owner,
                            json={"values": {"title": "Private"}})
        page_id = r.json()["id"]
        asha = await _client(first, page_id, owner)
        await asha.announce(11, 1, {"user": {"name": "Asha"}})
        frames: list[yws.Message] = []
        async with websockets.connect(_url(second, page_id, stranger)) as outsider:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    frame = await asyncio.wait_for(outsider.recv(), 10)
                    if frame[:1] != b"\x02":  # y-protocols' permission-denied message
                        frames.append(yws.decode(frame, LIMIT))  # type: ignore[arg-type]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
        assert frames == []
        await asha.close()


async def test_large_awareness_updates_are_split_and_an_oversized_state_stays_home() -> None:
    """Entries that together exceed one notice arrive in several; one entry larger than a
    notice is not relayed (its own hub's clients still get it)."""
    from hub.awareness_relay import Notice, PresenceRelay
    from hub.database import Database
    from tests.pg import fresh_database

    async with Database(await fresh_database()) as db, PresenceRelay(db) as sender, \
            PresenceRelay(db) as receiver:
        heard: list[Notice] = []
        arrived = asyncio.Event()

        def note(notice: Notice) -> None:
            heard.append(notice)
            arrived.set()

        receiver.listen(note)
        name = json.dumps({"user": {"name": "x" * 3000}})
        huge = json.dumps({"user": {"name": "y" * 9000}})
        entries = [yws.AwarenessEntry(c, 1, name) for c in (1, 2, 3)]
        await sender.publish("t1/canvas_pages/p", [*entries, yws.AwarenessEntry(4, 1, huge)])
        await sender.ask("t1/canvas_pages/p")

        async def all_heard() -> None:
            while not any(n.ask for n in heard):
                arrived.clear()
                await arrived.wait()

        await asyncio.wait_for(all_heard(), 10)
        relayed = [e for n in heard for e in n.entries]
        assert sorted(e.client_id for e in relayed) == [1, 2, 3]
        assert all(e.state == name for e in relayed)
        assert len([n for n in heard if n.entries]) >= 2  # split across notices
        assert heard[-1] == Notice("t1/canvas_pages/p", ask=True)
