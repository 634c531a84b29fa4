"""The Oracle's SQL verifier: every hostile query is refused, every analytics query passes with
its LIMIT enforced, and what runs is regenerated from the checked tree."""

from __future__ import annotations

import pytest

from gpu_hub.errors import QueryRefused
from gpu_hub.oracle.verifier import verify
from tests.oracle_corpus import HOSTILE, LEGITIMATE


def test_corpora_are_large_enough() -> None:
    assert len(set(HOSTILE)) >= 100
    assert len(set(LEGITIMATE)) >= 50


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_query_is_refused(sql: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        verify(sql, max_rows=500)
    assert refused.value.message  # the reason a person reads


@pytest.mark.parametrize("sql", LEGITIMATE)
def test_legitimate_query_passes_with_a_limit(sql: str) -> None:
    checked = verify(sql, max_rows=500)
    assert checked.sql.rstrip().upper().split()[-2] == "LIMIT"
    assert 1 <= checked.limit <= 500


def test_limit_is_capped_and_kept_when_smaller() -> None:
    assert verify("SELECT * FROM crm_people LIMIT 100000", max_rows=50).limit == 50
    assert verify("SELECT * FROM crm_people LIMIT 7", max_rows=50).limit == 7
    assert verify("SELECT * FROM crm_people LIMIT ALL", max_rows=50).limit == 50
    fetched = verify("SELECT * FROM crm_people FETCH FIRST 900 ROWS ONLY", max_rows=50)
    assert fetched.limit == 50 and "FETCH" not in fetched.sql


def test_comments_do_not_reach_the_database() -> None:
    checked = verify("SELECT /* hi */ count(*) FROM crm_people -- bye", max_rows=10)
    assert "/*" not in checked.sql and "--" not in checked.sql


def test_refusals_name_the_rule() -> None:
    cases = {
        "WITH d AS (DELETE FROM crm_people RETURNING *) SELECT * FROM d": "write_refused",
        "SELECT 1; SELECT 2": "multiple_statements",
        "SELECT pg_sleep(1)": "blocked_function",
        "SELECT * FROM hub_users": "table_not_allowed",
        "SELECT * FROM crm_people WHERE tenant_id = 't2'": "tenant_reference",
        "SELECT * FROM": "malformed_sql",
    }
    for sql, code in cases.items():
        with pytest.raises(QueryRefused) as refused:
            verify(sql, max_rows=10)
        assert refused.value.code == code, sql
