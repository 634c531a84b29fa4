"""The LLM planner: a question in plain language → one PostgreSQL SELECT over the catalog."""

from __future__ import annotations

import re

from gpu_hub.oracle.catalog import catalog_text

_FENCE = re.compile(r"```(?:sql|postgresql|postgres)?\s*\n?(.*?)```", re.S | re.I)
_THINK = re.compile(r"<think>.*?</think>", re.S)

SYSTEM = """You are the Oracle of a real-estate sales CRM. Write ONE PostgreSQL SELECT that \
answers the user's question, using only these tables and columns:

{catalog}

Rules: only SELECT (WITH is fine); never write, lock or change settings; never mention \
tenant_id (rows are already limited to the asker's company); money is in currency units \
(1 Cr = 10000000); give every computed column a short snake_case alias; put a category, stage \
or time column first and the measure second when the answer is a breakdown; add ORDER BY and a \
LIMIT of at most {limit}. Answer with the SQL in one ```sql block and nothing else."""


def system_prompt(row_limit: int) -> str:
    return SYSTEM.format(catalog=catalog_text(), limit=row_limit)


def repair_prompt(sql: str, reason: str) -> str:
    return (f"That query was refused or failed: {reason}\n```sql\n{sql}\n```\n"
            "Write a corrected query that follows the rules, in one ```sql block.")


def extract_sql(reply: str) -> str:
    """The SQL in an LLM reply: the first fenced block, else the whole reply."""
    reply = _THINK.sub("", reply)
    match = _FENCE.search(reply)
    return (match.group(1) if match else reply).strip()
