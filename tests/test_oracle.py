"""The Oracle end to end: analytics over the seed CRM, read-only execution in the asker's scope,
and questions planned by an OpenAI-compatible server speaking SGLang's API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from core.identity import Principal, Role
from gpu_hub.errors import QueryRefused
from gpu_hub.oracle.reader import run_query
from gpu_hub.oracle.verifier import VerifiedQuery
from hub.server import HubServer
from seeds.generator import generate
from seeds.loader import DEMO_PASSWORD, load
from tests.hubkit import running_hub
from tests.oracle_corpus import LEGITIMATE
from tests.standins.asgi import serve
from tests.standins.sglang import SglangStandIn

pytestmark = pytest.mark.anyio
DIRECTOR = Principal("acme", "acme-director", Role.SALES_DIRECTOR)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[tuple[SglangStandIn, str]]:
    standin = SglangStandIn()
    async with serve(standin.app()) as url:
        yield standin, url


@pytest.fixture(scope="module")
async def seeded(llm: tuple[SglangStandIn, str]) -> AsyncIterator[HubServer]:
    """A hub with the seed CRM in tenant acme and a little of another tenant's data."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VELOCITY_LLM_BASE_URL", llm[1] + "/v1")
    mp.setenv("VELOCITY_LLM_BACKOFF_S", "0.01")
    try:
        async with running_hub() as server:
            await load(server.hub, generate("acme", people=60, seed=7))
            await load(server.hub, generate("rival", people=5, seed=9))
            yield server
    finally:
        mp.undo()


async def _login(server: HubServer, email: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/auth/login", json={"email": email, "password": DEMO_PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_every_legitimate_query_returns_rows(seeded: HubServer) -> None:
    for sql in LEGITIMATE:
        answer = await seeded.hub.gpu.oracle.run_sql(DIRECTOR, sql, "analytics")
        assert answer.rows, sql
        assert answer.row_count <= answer.limit


async def test_rows_are_the_askers_tenant_and_scope(seeded: HubServer) -> None:
    pool = seeded.hub.db.pool
    oracle = seeded.hub.gpu.oracle
    acme = await pool.fetchval("SELECT count(*) FROM crm_people WHERE tenant_id = 'acme'")
    rival = await pool.fetchval("SELECT count(*) FROM crm_people WHERE tenant_id = 'rival'")
    assert rival > 0
    answer = await oracle.run_sql(DIRECTOR, "SELECT count(*) AS n FROM crm_people", "people")
    assert answer.rows == [{"n": acme}]
    rival_director = Principal("rival", "rival-director", Role.SALES_DIRECTOR)
    answer = await oracle.run_sql(rival_director, "SELECT count(*) AS n FROM crm_people", "x")
    assert answer.rows == [{"n": rival}]
    # a junior broker counts only the leads they own (the hub's read scope)
    owner, owned = (await pool.fetch(
        "SELECT owner_id, count(*) AS n FROM crm_leads WHERE tenant_id = 'acme' AND owner_id "
        "IN (SELECT user_id FROM hub_users WHERE role = 'JUNIOR_BROKER') GROUP BY owner_id "
        "LIMIT 1"))[0]
    junior = Principal("acme", owner, Role.JUNIOR_BROKER, team_id="team-x")
    answer = await oracle.run_sql(junior, "SELECT count(*) AS n FROM crm_leads", "mine")
    assert answer.rows == [{"n": owned}]
    total = await pool.fetchval("SELECT count(*) FROM crm_leads WHERE tenant_id = 'acme'")
    assert owned < total


@pytest.mark.parametrize("sql", [
    "DELETE FROM crm_people RETURNING id",
    "UPDATE crm_leads SET stage = 'WON' RETURNING id",
    "SELECT * FROM hub_users",
    "SELECT pg_sleep(10)",
    "SELECT 1; DELETE FROM crm_people",
    "CREATE TEMP TABLE stolen AS SELECT * FROM crm_people",
])
async def test_the_database_role_refuses_what_the_verifier_would(seeded: HubServer,
                                                                 sql: str) -> None:
    """Defence in depth: even SQL that skipped the verifier cannot write, read other tables,
    stack statements or outlast the statement timeout."""
    before = await seeded.hub.db.pool.fetchval("SELECT count(*) FROM crm_people")
    with pytest.raises(QueryRefused):
        await run_query(seeded.hub.db.pool, DIRECTOR, VerifiedQuery(sql, (), 10),
                        timeout_ms=200)
    assert await seeded.hub.db.pool.fetchval("SELECT count(*) FROM crm_people") == before


async def test_a_question_is_planned_verified_run_and_visualized(
        seeded: HubServer, llm: tuple[SglangStandIn, str]) -> None:
    standin, _ = llm
    replies = {
        "How many leads per stage?": "```sql\nSELECT stage, count(*) AS leads FROM crm_leads "
                                     "GROUP BY stage\n```",
        "How many people do we have?": "<think>count them</think>\n```sql\nSELECT count(*) "
                                       "AS people FROM crm_people;\n```",
        "Interactions per week": "```sql\nSELECT date_trunc('week', occurred_at) AS week, "
                                 "count(*) AS n FROM crm_interactions GROUP BY 1 ORDER BY 1\n```",
        "People by segment": "```sql\nSELECT segment, count(*) AS n FROM crm_people "
                             "GROUP BY segment\n```",
        "Recent activity": "```sql\nSELECT occurred_at, summary FROM crm_interactions "
                           "ORDER BY occurred_at DESC\n```",
        "Top leads": "```sql\nSELECT id, stage, budget_max, last_qd FROM crm_leads\n```",
    }
    shapes = {"How many leads per stage?": "pipeline_board",
              "How many people do we have?": "kpi", "Interactions per week": "line_chart",
              "People by segment": "bar_chart", "Recent activity": "activity_stream",
              "Top leads": "table"}
    standin.responder = lambda messages: replies[messages[-1]["content"]]
    headers = await _login(seeded, "director@acme.example")
    async with httpx.AsyncClient(base_url=seeded.url, timeout=30) as http:
        for question, shape in shapes.items():
            r = await http.post("/api/oracle/query", json={"question": question},
                                headers=headers)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["rows"], question
            assert body["visualization"]["component"] == shape, question
            assert body["planned_by"] == "qwen3.6-35b-a3b"
        usage = await seeded.hub.db.pool.fetchval(
            "SELECT count(*) FROM gpu_llm_usage WHERE tenant_id = 'acme' "
            "AND purpose = 'oracle_plan' AND prompt_tokens > 0")
        assert usage >= len(shapes)


async def test_a_refused_plan_gets_one_repair_round(seeded: HubServer,
                                                   llm: tuple[SglangStandIn, str]) -> None:
    standin, _ = llm
    seen: list[str] = []

    def planner(messages: list[dict[str, Any]]) -> str:
        seen.append(messages[-1]["content"])
        if len(seen) == 1:
            return "```sql\nWITH d AS (DELETE FROM crm_people RETURNING id) SELECT * FROM d\n```"
        return "```sql\nSELECT count(*) AS n FROM crm_people\n```"

    standin.responder = planner
    answer = await seeded.hub.gpu.oracle.ask(DIRECTOR, "wipe everyone")
    assert answer.attempts == 2 and answer.rows[0]["n"] > 0
    assert "DELETE is not allowed" in seen[1]
    standin.responder = lambda _m: "```sql\nDROP TABLE crm_people\n```"
    headers = await _login(seeded, "director@acme.example")
    async with httpx.AsyncClient(base_url=seeded.url) as http:
        r = await http.post("/api/oracle/query", json={"question": "drop it"}, headers=headers)
    assert r.status_code == 422 and r.json()["error"] == "write_refused"


async def test_sql_route_catalog_and_data_health(seeded: HubServer) -> None:
    headers = await _login(seeded, "director@acme.example")
    async with httpx.AsyncClient(base_url=seeded.url) as http:
        r = await http.post("/api/oracle/query", headers=headers,
                            json={"sql": "SELECT * FROM crm_people; DELETE FROM crm_people"})
        assert r.status_code == 422 and r.json()["error"] == "multiple_statements"
        r = await http.post("/api/oracle/query", headers=headers, json={})
        assert r.status_code == 422
        assert (await http.get("/api/oracle/schema-catalog")).status_code == 401
        r = await http.get("/api/oracle/schema-catalog", headers=headers)
        tables = {t["table"]: t for t in r.json()}
        assert "crm_leads" in tables and "hub_users" not in tables
        stage = next(c for c in tables["crm_leads"]["columns"] if c["name"] == "stage")
        assert "NEGOTIATION" in stage["values"]
        assert all(c["name"] != "tenant_id" for t in tables.values() for c in t["columns"])
        r = await http.get("/api/oracle/data-health", headers=headers)
        health = {h["table"]: h for h in r.json()}
        assert health["crm_people"]["rows"] > 0 and "segment" in health["crm_people"][
            "empty_values"]


async def test_llm_down_is_a_502(seeded: HubServer, llm: tuple[SglangStandIn, str]) -> None:
    standin, _ = llm
    standin.fail_next = [503] * 10
    headers = await _login(seeded, "director@acme.example")
    async with httpx.AsyncClient(base_url=seeded.url, timeout=30) as http:
        r = await http.post("/api/oracle/query", json={"question": "anything"},
                            headers=headers)
    assert r.status_code == 502 and r.json()["error"] == "gpu_unavailable"
    standin.fail_next = []


async def test_role_setup_is_idempotent(seeded: HubServer) -> None:
    from gpu_hub.oracle.reader import ensure_reader_role

    await ensure_reader_role(seeded.hub.db.pool)
    conn: asyncpg.Connection
    async with seeded.hub.db.pool.acquire() as conn:
        policies = await conn.fetchval(
            "SELECT count(*) FROM pg_policies WHERE policyname = 'velocity_oracle_scope'")
    assert policies >= 16


async def test_a_canvas_prompt_keeps_the_answer_as_a_component(
        seeded: HubServer, llm: tuple[SglangStandIn, str]) -> None:
    standin, _ = llm
    standin.responder = lambda _m: ("```sql\nSELECT stage, count(*) AS leads FROM crm_leads "
                                    "GROUP BY stage ORDER BY leads DESC\n```")
    director = await _login(seeded, "director@acme.example")
    broker = await _login(seeded, "broker1@acme.example")
    async with httpx.AsyncClient(base_url=seeded.url, timeout=30) as http:
        r = await http.post("/api/oracle/v1/canvas-pages", headers=director,
                            json={"values": {"title": "Funnel"}})
        page_id = r.json()["id"]
        r = await http.post(f"/api/oracle/v1/canvas-pages/{page_id}/prompts", headers=director,
                            json={"prompt": "Leads by stage"})
        assert r.status_code == 201, r.text
        component = r.json()["component"]
        assert component["type"] == "pipeline_board" and component["title"] == "Leads by stage"
        assert component["source"]["kind"] == "sql" and "crm_leads" in component["source"]["text"]
        assert sum(row["leads"] for row in component["data_rows"]) == await seeded.hub.db.pool \
            .fetchval("SELECT count(*) FROM crm_leads WHERE tenant_id = 'acme'")
        r = await http.get(f"/api/oracle/v1/canvas-pages/{page_id}", headers=director)
        assert [c["id"] for c in r.json()["components"]] == [component["id"]]
        # someone who may not edit the page spends no LLM call and changes nothing
        before = standin.requests
        r = await http.post(f"/api/oracle/v1/canvas-pages/{page_id}/prompts", headers=broker,
                            json={"prompt": "Leads by stage"})
        assert r.status_code in (403, 404) and standin.requests == before
