"""``GET /api/events``: a paired edge pushes a change and the browser streams of the users who
may read it get one small event for it; other tenants and other brokers' streams do not; the
stream resumes from Last-Event-ID and ends when the account changes or the token ends."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from core.identity import Principal, Role
from edge_agent.service import EdgeAgent
from hub.api import events as events_api
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from tests.hubkit import login, running_hub
from tests.reliability.kit import paired

pytestmark = pytest.mark.anyio
Event = tuple[str, dict[str, Any], str | None]


class Stream:
    """An SSE client reading ``/api/events`` in the background into ``events``."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str],
                 **params: object) -> None:
        self._http, self._headers, self._params = http, headers, params
        self.events: list[Event] = []
        self.ended = asyncio.Event()
        self._got = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self._task = asyncio.create_task(self._read())
        await self.wait_for(lambda: any(e[0] == "ready" for e in self.events))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        try:
            async with self._http.stream("GET", "/api/events", headers=self._headers,
                                         params=self._params) as r:
                assert r.status_code == 200, await r.aread()
                assert r.headers["content-type"].startswith("text/event-stream")
                fields: dict[str, str] = {}
                async for line in r.aiter_lines():
                    if line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                        continue
                    if "event" in fields:
                        self.events.append((fields["event"], json.loads(fields["data"]),
                                            fields.get("id")))
                        self._got.set()
                    fields = {}
        finally:
            self.ended.set()
            self._got.set()

    def changes(self) -> list[dict[str, Any]]:
        return [data for kind, data, _ in self.events if kind == "change"]

    def ids(self, collection: str) -> set[str]:
        return {c["id"] for c in self.changes() if c["collection"] == collection}

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        async def loop() -> None:
            while not predicate():
                assert not self.ended.is_set() or predicate(), self.events
                self._got.clear()
                await self._got.wait()
        await asyncio.wait_for(loop(), timeout)


async def test_an_edge_push_reaches_the_streams_that_may_read_it(tmp_path: Path) -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url,
                                                          timeout=None) as http:
        settings = await paired(server, tmp_path / "ipad", "t1-senior_broker")
        director = await login(server, "sales_director@t1.test")
        junior2 = await login(server, "junior2@t1.test")  # team south: not the senior's lead
        other = await login(server, "sales_director@t2.test")
        async with Stream(http, director) as seen_all, Stream(http, junior2) as seen_south, \
                Stream(http, other) as seen_t2, EdgeAgent(settings) as edge:
            lead = await edge.write("leads", None, {"person_id": "p1", "team_id": "north"})
            task = await edge.write("tasks", None, {"title": "Call Zara"})
            await seen_all.wait_for(lambda: task.id in seen_all.ids("tasks"))
            assert lead.id in seen_all.ids("leads")
            (change,) = [c for c in seen_all.changes() if c["id"] == lead.id]
            assert set(change) == {"collection", "id", "seq", "removed"}
            assert change["removed"] is False
            seqs = [int(i) for kind, _, i in seen_all.events if kind == "change" and i]
            assert seqs == sorted(seqs)
            # The task (tenant-wide) comes after the lead: junior2 got it, and not the lead.
            await seen_south.wait_for(lambda: task.id in seen_south.ids("tasks"))
            assert seen_south.ids("leads") == set()
            # Another tenant: its own change arrives, nothing of t1 before it.
            await server.hub.writer.write(Principal("t2", "t2-admin", Role.ADMIN), "tasks",
                                          "t2-task", {"tenant_id": "t2", "title": "x"},
                                          create=True)
            await seen_t2.wait_for(lambda: "t2-task" in seen_t2.ids("tasks"))
            assert [c["id"] for c in seen_t2.changes()] == ["t2-task"]

            # Reassigned away from the senior's team: the senior's stream hears a removal.
            senior = await login(server, "senior_broker@t1.test")
            async with Stream(http, senior) as seen_north:
                r = await http.post(f"/api/leads/{lead.id}/reassign", headers=director,
                                    json={"owner_id": "t1-junior2"})
                assert r.status_code == 200, r.text
                await seen_north.wait_for(lambda: any(
                    c["id"] == lead.id and c["removed"] for c in seen_north.changes()))
                await seen_south.wait_for(lambda: lead.id in seen_south.ids("leads"))

            # Resume: from an event's id, the changes after it come again.
            first_seq = change["seq"]
            async with Stream(http, director, since=first_seq) as resumed:
                await resumed.wait_for(lambda: task.id in resumed.ids("tasks"))
                assert lead.id in resumed.ids("leads")  # its reassignment, after first_seq
            resumed_by_header = Stream(http, {**director, "Last-Event-ID": str(first_seq)})
            async with resumed_by_header:
                await resumed_by_header.wait_for(
                    lambda: task.id in resumed_by_header.ids("tasks"))


async def test_the_stream_ends_with_the_account_or_the_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_api, "KEEPALIVE_S", 0.3)
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url,
                                                          timeout=None) as http:
        admin = await login(server, "admin@t1.test")
        junior = await login(server, "junior_broker@t1.test")
        async with Stream(http, junior) as stream:
            r = await http.post("/api/auth/users/t1-junior_broker/disable", headers=admin)
            assert r.status_code == 200
            await asyncio.wait_for(stream.ended.wait(), 5)
            assert stream.events[-1][:2] == ("closed", {"reason": "disabled"})
        await http.post("/api/auth/users/t1-junior_broker/enable", headers=admin)

        senior = await login(server, "senior_broker@t1.test")
        async with Stream(http, senior) as stream:  # a logout ends it at the next keepalive
            assert (await http.post("/api/auth/logout", headers=senior)).status_code == 200
            await asyncio.wait_for(stream.ended.wait(), 5)
            assert stream.events[-1][:2] == ("closed", {"reason": "token_revoked"})

        # ... also while changes keep coming (a stream that is never idle).
        senior = await login(server, "senior_broker@t1.test")
        writer = Principal("t1", "t1-admin", Role.ADMIN)

        async def keep_writing() -> None:
            for n in itertools.count():
                await server.hub.writer.write(writer, "tasks", f"busy-{n}",
                                              {"tenant_id": "t1", "title": "busy"}, create=True)
                await asyncio.sleep(0.05)

        async with Stream(http, senior) as stream:
            busy = asyncio.create_task(keep_writing())
            try:
                await stream.wait_for(lambda: len(stream.changes()) >= 3)
                assert (await http.post("/api/auth/logout", headers=senior)).status_code == 200
                await asyncio.wait_for(stream.ended.wait(), 5)
            finally:
                busy.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await busy
            assert stream.events[-1][:2] == ("closed", {"reason": "token_revoked"})

        director = await login(server, "sales_director@t1.test")
        async with Stream(http, director, max_s=0) as stream:
            await asyncio.wait_for(stream.ended.wait(), 5)
            assert [e[0] for e in stream.events] == ["ready"]
        for headers in ({}, {"Authorization": "Bearer not.a.token"}):
            r = await http.get("/api/events", headers=headers)
            assert r.status_code == 401
        for params in ({"max_s": -1}, {"max_s": 3601}, {"since": "x"}):
            r = await http.get("/api/events", headers=director, params=params)
            assert r.status_code == 422, params


async def test_a_stream_on_another_hub_process_hears_the_commit() -> None:
    async with running_hub() as first:
        second = Hub(HubSettings(database_url=first.hub.database_url, sandbox_workers=1))
        async with HubServer(second, host="127.0.0.1", port=0) as other, \
                httpx.AsyncClient(base_url=other.url, timeout=None) as http:
            director = await login(first, "sales_director@t1.test")
            async with Stream(http, director) as stream:
                r = await http.post("/api/crm/tasks", headers=director,
                                    json={"values": {"title": "via the other hub"}})
                assert r.status_code == 201
                async with httpx.AsyncClient(base_url=first.url) as first_http:
                    r = await first_http.post("/api/crm/tasks", headers=director,
                                              json={"values": {"title": "via the first"}})
                await stream.wait_for(lambda: r.json()["id"] in stream.ids("tasks"))
                assert len(stream.ids("tasks")) == 2
