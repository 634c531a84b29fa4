"""`/api/oracle/…`: ask a question (or run checked SQL), the catalog, data health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from gpu_hub.api.deps import FrontDep, PrincipalDep
from gpu_hub.oracle.service import Answer

router = APIRouter(prefix="/api/oracle", tags=["oracle"])


class Query(BaseModel):
    question: str | None = Field(None, min_length=1, max_length=2000)
    """A question in plain language, planned into SQL by the LLM."""
    sql: str | None = Field(None, min_length=1, max_length=20_000)
    """Or a SELECT written by an analyst; it passes the same verifier."""

    @model_validator(mode="after")
    def _one(self) -> Query:
        if (self.question is None) == (self.sql is None):
            raise ValueError("give exactly one of question or sql")
        return self


@router.post("/query")
async def query(body: Query, caller: PrincipalDep, front: FrontDep) -> Answer:
    if body.sql is not None:
        return await front.oracle.run_sql(caller, body.sql, "SQL query")
    assert body.question is not None
    return await front.oracle.ask(caller, body.question)


@router.get("/schema-catalog")
async def schema_catalog(caller: PrincipalDep, front: FrontDep) -> list[dict[str, Any]]:
    return front.oracle.catalog()


@router.get("/data-health")
async def data_health(caller: PrincipalDep, front: FrontDep) -> list[dict[str, Any]]:
    return await front.oracle.data_health(caller)
