"""The Oracle: a question → planned SQL → verified → run read-only in the asker's scope →
a visualization chosen from the rows."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import BaseModel

from core.identity import Principal
from gpu_hub.errors import QueryRefused
from gpu_hub.llm.client import LlmRuntime, Message
from gpu_hub.oracle.catalog import CATALOG
from gpu_hub.oracle.planner import extract_sql, repair_prompt, system_prompt
from gpu_hub.oracle.reader import run_query
from gpu_hub.oracle.verifier import verify
from gpu_hub.oracle.visualize import Visualization, plan_visualization
from gpu_hub.settings import GpuSettings

PLAN_ATTEMPTS = 2
"""A planned query that is refused or fails gets one repair round with the reason."""


class Answer(BaseModel):
    question: str
    sql: str
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    limit: int
    visualization: Visualization
    planned_by: str | None = None
    """The model that wrote the SQL (None when the caller gave the SQL)."""
    attempts: int = 1

    def as_component(self) -> dict[str, Any]:
        """The answer as a canvas component, its rows kept with it."""
        vis = self.visualization
        return {"type": vis.component.value, "title": self.question[:200],
                "config": {"x": vis.x, "y": vis.y, "columns": self.columns},
                "source": {"kind": "sql", "text": self.sql, "question": self.question,
                           "planned_by": self.planned_by},
                "data_rows": self.rows}


class Oracle:
    def __init__(self, pool: asyncpg.Pool, llm: LlmRuntime, settings: GpuSettings) -> None:
        self.pool, self.llm, self.settings = pool, llm, settings

    async def run_sql(self, principal: Principal, sql: str, title: str) -> Answer:
        """Verify and run SQL written by a person (or a planner), in the caller's scope."""
        query = verify(sql, max_rows=self.settings.oracle_row_limit)
        columns, rows = await run_query(self.pool, principal, query,
                                        timeout_ms=self.settings.oracle_statement_timeout_ms)
        return Answer(question=title, sql=query.sql, columns=columns, rows=rows,
                      row_count=len(rows), limit=query.limit,
                      visualization=plan_visualization(columns, rows, title))

    async def ask(self, principal: Principal, question: str) -> Answer:
        """Plan SQL for ``question`` with the LLM, then verify and run it."""
        messages: list[Message] = [
            {"role": "system", "content": system_prompt(self.settings.oracle_row_limit)},
            {"role": "user", "content": question}]
        refusal: QueryRefused | None = None
        for attempt in range(1, PLAN_ATTEMPTS + 1):
            reply = await self.llm.chat(principal, messages, purpose="oracle_plan",
                                        temperature=0.0)
            sql = extract_sql(reply.content)
            try:
                answer = await self.run_sql(principal, sql, question)
            except QueryRefused as exc:
                refusal = exc
                messages += [{"role": "assistant", "content": reply.content},
                             {"role": "user", "content": repair_prompt(sql, exc.message)}]
                continue
            return answer.model_copy(update={"planned_by": reply.model, "attempts": attempt})
        assert refusal is not None
        raise refusal

    @staticmethod
    def catalog() -> list[dict[str, Any]]:
        return [t.as_dict() for t in CATALOG.values()]

    async def data_health(self, principal: Principal) -> list[dict[str, Any]]:
        """Per catalog table in the caller's scope: rows, newest record, and how many rows
        leave each described column empty."""
        health = []
        for name, table in CATALOG.items():
            described = [c.name for c in table.columns if c.meaning and c.name not in (
                "id", "deleted")][:8]
            nulls = ", ".join(f"count(*) - count({c}) AS {c}" for c in described)
            answer = await self.run_sql(principal, f"SELECT count(*) AS total_rows, "
                                        f"max(created_at) AS newest, {nulls} FROM {name}", name)
            row = answer.rows[0]
            health.append({"table": name, "rows": row.pop("total_rows"),
                           "newest": row.pop("newest"), "empty_values": row})
        return health
