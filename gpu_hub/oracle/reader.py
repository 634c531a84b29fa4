"""Run verified Oracle queries as a read-only database role, one tenant's rows at a time.

The role ``velocity_oracle`` has SELECT on the catalog's tables and nothing else. Each of those
tables carries a row-level security policy for that role alone, keyed by transaction-local
settings: the caller's tenant, and for brokers their own (or team's) owner-scoped rows — the
same read scope as the rest of the hub. A query runs in a READ ONLY transaction that switches to
the role with ``SET LOCAL ROLE`` and sets a statement timeout, over the extended protocol (one
statement per execution); the hub's own connections own the tables and are not affected.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from core.errors import ConfigError
from core.identity import Principal, Role
from gpu_hub.errors import QueryRefused
from gpu_hub.oracle.catalog import CATALOG
from gpu_hub.oracle.verifier import VerifiedQuery

ROLE = "velocity_oracle"
POLICY = "velocity_oracle_scope"
_LOCK_KEY = 0x0A4C1E17

_SCOPE = ("tenant_id = current_setting('velocity.tenant_id', true) AND deleted IS NOT TRUE")
_OWNER_SCOPE = (
    " AND (current_setting('velocity.manager', true) = 'on'"
    " OR owner_id = current_setting('velocity.user_id', true)"
    " OR (current_setting('velocity.team_id', true) <> ''"
    " AND team_id = current_setting('velocity.team_id', true)))"
)


def _policy_sql(owner_scoped: bool) -> str:
    return _SCOPE + (_OWNER_SCOPE if owner_scoped else "")


async def ensure_reader_role(pool: asyncpg.Pool) -> None:
    """Create the role, its grants and the row policies where missing (safe on every start,
    from several hubs at once)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", ROLE):
            try:
                async with conn.transaction():
                    await conn.execute(f"CREATE ROLE {ROLE} NOLOGIN NOINHERIT")
            except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
                pass  # another database on this server created it at the same moment
        if not await conn.fetchval("SELECT pg_has_role(current_user, $1, 'MEMBER')", ROLE):
            await conn.execute(f"GRANT {ROLE} TO CURRENT_USER")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
        existing = {r["tablename"]: r["qual"] for r in await conn.fetch(
            "SELECT tablename, qual FROM pg_policies WHERE policyname = $1", POLICY)}
        for name, table in CATALOG.items():
            await conn.execute(f"GRANT SELECT ON {name} TO {ROLE}")
            if name not in existing:
                await conn.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
                await conn.execute(
                    f"CREATE POLICY {POLICY} ON {name} FOR SELECT TO {ROLE} "
                    f"USING ({_policy_sql(table.owner_scoped)})")


def _scope_settings(principal: Principal) -> dict[str, str]:
    senior_team = principal.team_id if principal.role is Role.SENIOR_BROKER else None
    return {
        "velocity.tenant_id": principal.tenant_id,
        "velocity.user_id": principal.user_id,
        "velocity.team_id": senior_team or "",
        "velocity.manager": "on" if principal.is_manager else "off",
    }


def _unique(names: list[str]) -> list[str]:
    """Column names made unique (``count``, ``count_2``) so rows can be keyed by them."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | dict):
        return json.loads(json.dumps(value, default=str))
    return str(value)


async def run_query(pool: asyncpg.Pool, principal: Principal, query: VerifiedQuery, *,
                    timeout_ms: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and JSON-ready rows of ``query``, as the read-only role in the caller's
    scope; an error from PostgreSQL (timeout, bad column) becomes `QueryRefused`."""
    settings = _scope_settings(principal)
    try:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL ROLE {ROLE}")
            await conn.execute(
                "SELECT set_config('statement_timeout', $1, true), "
                + ", ".join(f"set_config('{k}', ${i + 2}, true)" for i, k in enumerate(settings)),
                str(timeout_ms), *settings.values())
            statement = await conn.prepare(query.sql)
            columns = _unique([a.name for a in statement.get_attributes()])
            records = await statement.fetch(timeout=timeout_ms / 1000 + 5)
    except asyncpg.QueryCanceledError:
        raise QueryRefused(f"query ran longer than {timeout_ms} ms; narrow it down",
                           code="query_timeout") from None
    except asyncpg.InsufficientPrivilegeError as exc:
        raise QueryRefused(f"not permitted: {exc}", code="not_permitted") from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if isinstance(exc, asyncpg.UndefinedObjectError) and ROLE in str(exc):
            raise ConfigError("the Oracle's database role is missing; restart the hub") from exc
        raise QueryRefused(f"query failed: {exc}", code="query_failed") from None
    except TimeoutError:
        raise QueryRefused(f"query ran longer than {timeout_ms} ms; narrow it down",
                           code="query_timeout") from None
    rows = [{c: _json_value(r[i]) for i, c in enumerate(columns)} for r in records]
    return columns, rows
