"""Oracle canvas pages over REST: sharing on every route, components, revisions and rollback,
forks and merge requests, and the same sharing rules on synced changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from hub.database import Database
from hub.server import HubServer
from sync import protocol as p
from tests.hubkit import login, pair_device, running_hub
from tests.pg import fresh_database

pytestmark = pytest.mark.anyio
API = "/api/oracle/v1"


def _kpi(cid: str, title: str) -> dict[str, Any]:
    return {"id": cid, "type": "kpi", "title": title, "config": {"metric": "leads"},
            "source": {"kind": "named_query", "text": "open_leads"},
            "data_rows": [{"value": 12}], "layout": {"x": 0, "y": 0, "w": 2, "h": 1}}


def _ids(page: dict[str, Any]) -> list[str]:
    return [c["id"] for c in page["components"]]


class Client:
    """One signed-in user of the REST API; every call must answer ``expect``."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http, self.headers = http, headers

    async def call(self, method: str, path: str, json: Any = None, expect: int = 200) -> Any:
        r = await self.http.request(method, API + path, json=json, headers=self.headers)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content else None


@asynccontextmanager
async def _session(*emails: str) -> AsyncIterator[tuple[HubServer, list[Client]]]:
    """A running hub and a REST client signed in as each of ``emails``."""
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        yield server, [Client(http, await login(server, e)) for e in emails]


async def test_sharing_components_revisions_and_rollback() -> None:
    async with _session("junior_broker@t1.test", "junior2@t1.test", "senior_broker@t1.test",
                        "sales_director@t1.test", "admin@t2.test") as (server, clients):
        owner, other, senior, director, stranger = clients
        page = await owner.call("POST", "/canvas-pages", {"values": {"title": "Q4 whales"}},
                                expect=201)
        pid = page["id"]
        assert page["owner_id"] == "t1-junior_broker" and page["sharing"] == "private"
        # private: another broker neither sees nor edits it; another tenant neither
        await other.call("GET", f"/canvas-pages/{pid}", expect=404)
        await stranger.call("GET", f"/canvas-pages/{pid}", expect=404)
        assert pid not in [p["id"] for p in await other.call("GET", "/canvas-pages")]
        await other.call("PATCH", f"/canvas-pages/{pid}", {"values": {"title": "x"}}, expect=404)
        assert (await director.call("GET", f"/canvas-pages/{pid}"))["id"] == pid  # directors view
        await director.call("PATCH", f"/canvas-pages/{pid}", {"values": {"title": "x"}},
                            expect=403)

        # components: add, add first, add after, edit, move, delete
        for body in ({"component": _kpi("c1", "Leads")},
                     {"component": _kpi("c2", "Visits"), "first": True},
                     {"component": _kpi("c3", "Bookings"), "after": "c2"}):
            page = await owner.call("POST", f"/canvas-pages/{pid}/components", body, expect=201)
        assert _ids(page) == ["c2", "c3", "c1"]
        page = await owner.call("PATCH", f"/canvas-pages/{pid}/components/c3",
                                {"values": {"title": "Booked", "config": {"metric": "b"}}})
        assert page["components"][1]["title"] == "Booked"
        page = await owner.call("POST", f"/canvas-pages/{pid}/components/c2/move",
                                {"after": "c1"})
        assert _ids(page) == ["c3", "c1", "c2"]
        await owner.call("POST", f"/canvas-pages/{pid}/components",
                         {"component": {"id": "bad", "type": "hologram"}}, expect=422)
        await owner.call("POST", f"/canvas-pages/{pid}/components/nope/move", {}, expect=404)

        # sharing: a named viewer reads but may not edit; a named editor edits but may not
        # change the sharing; only the owner shares
        await owner.call("PATCH", f"/canvas-pages/{pid}", {"values": {
            "viewers": ["t1-junior2"], "editors": ["t1-senior_broker"]}})
        assert (await other.call("GET", f"/canvas-pages/{pid}"))["title"] == "Q4 whales"
        refused = await other.call("PATCH", f"/canvas-pages/{pid}/components/c1",
                                   {"values": {"title": "mine"}}, expect=403)
        assert refused["error"] == "view_only"
        await senior.call("PATCH", f"/canvas-pages/{pid}/components/c1",
                          {"values": {"title": "Leads (senior)"}})
        refused = await senior.call("PATCH", f"/canvas-pages/{pid}",
                                    {"values": {"sharing": "tenant"}}, expect=403)
        assert refused["error"] == "owner_only"
        await senior.call("DELETE", f"/canvas-pages/{pid}", expect=403)

        # revisions are checkpoints; a rollback is a new change and history stays
        rev = await owner.call("POST", f"/canvas-pages/{pid}/revisions", {"name": "v1"},
                               expect=201)
        v1 = await owner.call("GET", f"/canvas-pages/{pid}")
        await owner.call("DELETE", f"/canvas-pages/{pid}/components/c3")
        await owner.call("POST", f"/canvas-pages/{pid}/components", {"component":
                         _kpi("c9", "New")}, expect=201)
        await owner.call("PATCH", f"/canvas-pages/{pid}", {"values": {"title": "Renamed"}})
        await owner.call("POST", f"/canvas-pages/{pid}/revisions", {"name": "v2"}, expect=201)
        updates_before = await _updates(server, pid)
        await other.call("POST", f"/canvas-pages/{pid}/rollback",
                         {"revision_id": rev["revision_id"]}, expect=403)
        rolled = await owner.call("POST", f"/canvas-pages/{pid}/rollback",
                                  {"revision_id": rev["revision_id"]})
        assert rolled["components"] == v1["components"] and rolled["title"] == "Q4 whales"
        assert rolled["viewers"] == ["t1-junior2"]  # sharing is not content
        assert await _updates(server, pid) == updates_before + 1
        names = [r["name"] for r in await owner.call("GET", f"/canvas-pages/{pid}/revisions")]
        assert names == ["v1", "v2"]
        got = await other.call("GET", f"/canvas-pages/{pid}/revisions/{rev['revision_id']}")
        assert [c["id"] for c in got["content"]["components"]] == ["c3", "c1", "c2"]

        # sharing with the team, then delete (owner only)
        await owner.call("PATCH", f"/canvas-pages/{pid}", {"values": {"viewers": [],
                                                                      "sharing": "team"}})
        await other.call("GET", f"/canvas-pages/{pid}", expect=404)  # team south, page north
        assert (await senior.call("GET", f"/canvas-pages/{pid}"))["id"] == pid
        await owner.call("DELETE", f"/canvas-pages/{pid}", expect=204)
        await owner.call("GET", f"/canvas-pages/{pid}", expect=404)


async def _updates(server: Any, page_id: str) -> int:
    return int(await server.hub.db.pool.fetchval(
        "SELECT count(*) FROM hub_updates WHERE guid = $1", f"canvas_pages/{page_id}"))


async def test_fork_merge_request_approve_and_reject() -> None:
    async with _session("junior_broker@t1.test", "junior2@t1.test") as (server, clients):
        owner, forker = clients
        page = await owner.call("POST", "/canvas-pages", {"values": {
            "title": "Pipeline", "viewers": ["t1-junior2"],
            "components": [_kpi("c1", "Leads"), _kpi("c2", "Visits"), _kpi("c3", "Lost")]}},
            expect=201)
        pid = page["id"]
        fork = await forker.call("POST", f"/canvas-pages/{pid}/forks", {}, expect=201)
        fid = fork["id"]
        assert fork["owner_id"] == "t1-junior2" and fork["parent_id"] == pid
        assert [f["fork_id"] for f in await owner.call("GET", f"/canvas-pages/{pid}/forks")] \
            == []  # a private fork is the forker's own
        assert [f["fork_id"] for f in await forker.call("GET", f"/canvas-pages/{pid}/forks")] \
            == [fid]

        # both sides edit: the parent renames c1 and adds c5; the fork edits c2, adds c4
        # after c2, removes c3 and moves c1 to the end
        await owner.call("PATCH", f"/canvas-pages/{pid}/components/c1",
                         {"values": {"title": "Leads (owner)"}})
        await owner.call("POST", f"/canvas-pages/{pid}/components",
                         {"component": _kpi("c5", "Parent only")}, expect=201)
        await forker.call("PATCH", f"/canvas-pages/{fid}/components/c2",
                          {"values": {"config": {"metric": "site_visits"}}})
        await forker.call("POST", f"/canvas-pages/{fid}/components",
                          {"component": _kpi("c4", "Fork only"), "after": "c2"}, expect=201)
        await forker.call("DELETE", f"/canvas-pages/{fid}/components/c3")
        await forker.call("POST", f"/canvas-pages/{fid}/components/c1/move", {})
        parent_before = await owner.call("GET", f"/canvas-pages/{pid}")

        mr = await forker.call("POST", "/merge-requests", {"fork_id": fid, "title": "Visits"},
                               expect=201)
        assert mr["status"] == "open" and mr["parent_id"] == pid
        assert mr["diff"] == {
            "page_fields_changed": [],
            "components_added": [{"id": "c4", "type": "kpi", "title": "Fork only"}],
            "components_removed": ["c3"],
            "components_changed": [{"id": "c2", "keys": ["config"]}],
            "components_moved": ["c1"],
        }
        refused = await forker.call("POST", f"/merge-requests/{mr['mr_id']}/review",
                                    {"decision": "approve"}, expect=403)
        assert refused["error"] == "view_only"  # the forker may only view the parent
        assert [m["mr_id"] for m in await owner.call("GET", f"/merge-requests?page_id={pid}")] \
            == [mr["mr_id"]]

        # approve: the merge of both sides, nothing lost, nothing twice
        done = await owner.call("POST", f"/merge-requests/{mr['mr_id']}/review",
                                {"decision": "approve", "comment": "thanks"})
        assert done["status"] == "approved" and done["merged_seq"]
        merged = await owner.call("GET", f"/canvas-pages/{pid}")
        assert _ids(merged) == ["c2", "c4", "c1", "c5"]  # placed after their fork neighbour
        by_id = {c["id"]: c for c in merged["components"]}
        assert by_id["c1"]["title"] == "Leads (owner)"  # the parent's edit stays
        assert by_id["c2"]["config"] == {"metric": "site_visits"}  # the fork's edit arrives
        assert merged["viewers"] == parent_before["viewers"]
        await owner.call("POST", f"/merge-requests/{mr['mr_id']}/review",
                         {"decision": "approve"}, expect=409)

        # a second proposal carries only what changed since the merge; rejected, the parent
        # is untouched
        await forker.call("PATCH", f"/canvas-pages/{fid}", {"values": {"title": "Renamed"}})
        mr2 = await forker.call("POST", "/merge-requests", {"fork_id": fid, "title": "Name"},
                                expect=201)
        assert mr2["diff"]["page_fields_changed"] == ["title"]
        assert mr2["diff"]["components_added"] == mr2["diff"]["components_changed"] == []
        updates = await _updates(server, pid)
        rejected = await owner.call("POST", f"/merge-requests/{mr2['mr_id']}/review",
                                    {"decision": "reject", "comment": "keep the name"})
        assert rejected["status"] == "rejected" and rejected["merged_seq"] is None
        assert await owner.call("GET", f"/canvas-pages/{pid}") == merged
        assert await _updates(server, pid) == updates
        await owner.call("POST", "/merge-requests", {"fork_id": pid, "title": "x"}, expect=422)


async def test_synced_edit_of_a_view_only_page_is_refused_with_a_reason() -> None:
    async with _session("junior_broker@t1.test") as (server, clients):
        owner, = clients
        page = await owner.call("POST", "/canvas-pages", {"values": {
            "title": "Shared", "sharing": "tenant", "editors": ["t1-senior_broker"],
            "components": [_kpi("c1", "Leads")]}}, expect=201)
        guid = f"canvas_pages/{page['id']}"
        viewer = await pair_device(server, "junior2@t1.test", "t1-junior2", 7001)
        editor = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 7002)
        for device in (viewer, editor):
            await device.connect()
            await device.wait_for(lambda d=device: guid in d.docs)
        try:
            await viewer.write(guid, {"title": "Hijacked"}, "v-1")
            await viewer.wait_for(lambda: "v-1" in viewer.refusals)
            refusal = viewer.refusals["v-1"]
            assert refusal.reason == "view_only" and "only view" in refusal.message
            await editor.write(guid, {"narrative": "Agenda: whales"}, "e-1")
            await editor.wait_for(lambda: "e-1" in editor.acks)
            await editor.write(guid, {"sharing": "private"}, "e-2")
            await editor.wait_for(lambda: "e-2" in editor.refusals)
            assert editor.refusals["e-2"].reason == "owner_only"
        finally:
            await viewer.close()
            await editor.close()
        now = await owner.call("GET", f"/canvas-pages/{page['id']}")
        assert now["title"] == "Shared" and now["narrative"] == "Agenda: whales"
        assert now["sharing"] == "tenant"
        assert isinstance(refusal, p.Refusal)


async def test_a_database_from_before_page_sharing_gains_its_columns() -> None:
    url = await fresh_database()
    conn = await asyncpg.connect(url)
    try:  # the projection table as the first release created it
        await conn.execute(
            "CREATE TABLE oracle_canvas_pages (tenant_id text NOT NULL, id text, owner_id text, "
            "team_id text, created_at timestamptz, deleted boolean, title text, components "
            "jsonb, narrative text, PRIMARY KEY (tenant_id, id))")
    finally:
        await conn.close()
    async with Database(url) as db:
        columns = {r["column_name"] for r in await db.pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            "'oracle_canvas_pages'")}
    assert {"sharing", "editors", "viewers"} <= columns


async def test_pages_replicate_only_to_devices_whose_users_may_read_them() -> None:
    async with _session("junior_broker@t1.test") as (server, clients):
        owner, = clients
        private = (await owner.call("POST", "/canvas-pages", {"values": {"title": "Mine"}},
                                    expect=201))["id"]
        public = (await owner.call("POST", "/canvas-pages", {"values": {
            "title": "Everyone", "sharing": "tenant"}}, expect=201))["id"]
        team = (await owner.call("POST", "/canvas-pages", {"values": {
            "title": "North", "sharing": "team"}}, expect=201))["id"]
        other = await pair_device(server, "junior2@t1.test", "t1-junior2", 7201)  # south
        senior = await pair_device(server, "senior_broker@t1.test", "t1-senior_broker", 7202)
        director = await pair_device(server, "sales_director@t1.test", "t1-sales_director",
                                     7203)
        guids = {name: f"canvas_pages/{pid}" for name, pid in
                 (("private", private), ("public", public), ("team", team))}
        try:
            for device in (other, senior, director):
                await device.connect()
                await device.wait_for(lambda d=device: guids["public"] in d.docs)
            await director.wait_for(lambda: set(guids.values()) <= set(director.docs))
            await senior.wait_for(lambda: guids["team"] in senior.docs)  # north, like the page
            assert guids["private"] not in other.docs and guids["team"] not in other.docs
            assert guids["private"] not in senior.docs

            # shared by name: the page arrives whole; unshared: it leaves the device
            await owner.call("PATCH", f"/canvas-pages/{private}", {"values": {
                "viewers": ["t1-junior2"], "narrative": "for your eyes"}})
            await other.wait_for(lambda: guids["private"] in other.docs)
            assert other.docs[guids["private"]].content()["narrative"] == "for your eyes"
            await owner.call("PATCH", f"/canvas-pages/{private}", {"values": {"viewers": []}})
            await other.wait_for(lambda: guids["private"] not in other.docs)
            assert guids["private"] not in senior.docs
        finally:
            for device in (other, senior, director):
                await device.close()

        # a device that bootstraps later gets exactly what its user may read
        late = await pair_device(server, "junior2@t1.test", "t1-junior2", 7204)
        await late.connect()
        try:
            await late.wait_for(lambda: guids["public"] in late.docs)
            await late.wait_for(lambda: late.batches > 0 and late.cursor > 0)
            assert {g for g in late.docs if g.startswith("canvas_pages/")} == {guids["public"]}
        finally:
            await late.close()
