"""An Oracle question as a durable GPU job (asked on a device, run when it reaches the hub)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from core.identity import Principal, Role
from gpu_hub.errors import QueryRefused
from gpu_hub.jobs import Job
from gpu_hub.oracle.service import Oracle
from gpu_hub.runner import Progress


class OracleQuestion(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    role: Role
    team_id: str | None = None
    """The asker's role and team when the job was made: the answer is in their read scope."""


class OracleQuestionHandler:
    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle

    async def __call__(self, job: Job, progress: Progress) -> dict[str, Any]:
        """The answer; a query the verifier refuses is a result too (``{"refused": why}``),
        since asking again would be refused again."""
        request = OracleQuestion(**job.request)
        principal = Principal(job.tenant_id, job.user_id, request.role, request.team_id)
        await progress(0.1)
        try:
            answer = await self.oracle.ask(principal, request.question)
        except QueryRefused as exc:
            return {"refused": exc.message}
        return answer.model_dump(mode="json")
