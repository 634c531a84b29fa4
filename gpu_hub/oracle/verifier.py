"""The Oracle's SQL verifier, on a real parser (sqlglot, PostgreSQL dialect).

A query passes only when it is one SELECT (CTEs and set operations allowed) that reads
allow-listed tables, writes nothing anywhere in its tree, calls no dangerous function, names no
tenant, and returns at most the row limit. What runs is the SQL regenerated from the checked tree
(comments dropped, LIMIT enforced), never the text as submitted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from gpu_hub.errors import QueryRefused
from gpu_hub.oracle.catalog import CATALOG, HIDDEN_COLUMNS

MAX_SQL_CHARS = 20_000
MAX_NODES = 5_000

_WRITES: tuple[type[exp.Expression], ...] = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
    exp.TruncateTable, exp.Copy, exp.Grant, exp.Command, exp.Set, exp.Transaction,
    exp.Commit, exp.Rollback, exp.Into, exp.Lock, exp.LoadData, exp.Use, exp.Pragma,
    exp.Analyze, exp.Describe, exp.Revoke,
)
"""Statements and clauses that write, lock, change the session or run uninspected SQL."""

BLOCKED_FUNCTIONS = frozenset({
    "pg_sleep", "pg_sleep_for", "pg_sleep_until", "dblink", "dblink_exec", "dblink_connect",
    "set_config", "current_setting", "pg_read_file", "pg_read_binary_file", "pg_ls_dir",
    "pg_stat_file", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
    "pg_rotate_logfile", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_notify",
    "query_to_xml", "query_to_xml_and_xmlschema", "table_to_xml", "cursor_to_xml",
    "database_to_xml", "schema_to_xml", "xpath", "txid_current", "nextval", "setval",
    "currval", "lo_import", "lo_export", "lo_open", "lo_create", "lo_unlink", "lo_put",
    "lo_get", "lo_from_bytea", "version", "inet_server_addr", "current_user", "session_user",
    "pg_backend_pid", "pg_export_snapshot", "pg_logical_emit_message", "current_version",
    "current_schema", "current_schemas", "current_database", "current_catalog",
})
_BLOCKED_PREFIXES = ("pg_", "lo_", "dblink", "xml", "txid_", "binary_upgrade", "brin_", "gin_")

ALLOWED_UNTYPED_FUNCTIONS = frozenset({
    "jsonb_array_elements_text", "jsonb_array_length", "jsonb_typeof", "json_array_length",
    "array_length", "cardinality", "initcap", "split_part", "btrim", "to_char", "to_date",
    "age", "justify_interval", "width_bucket", "string_to_array", "regexp_replace",
    "date_part", "percent_rank", "cume_dist", "ntile", "mode", "bool_and", "bool_or",
    "every", "num_nulls", "num_nonnulls", "make_date", "make_interval", "format",
    "jsonb_build_object", "json_build_object", "isfinite", "left", "right", "reverse",
    "to_timestamp", "trunc", "sign", "div", "mod",
})
"""Functions sqlglot does not model itself (`exp.Anonymous`) that are pure and safe."""

TABLE_FUNCTIONS = frozenset({"jsonb_array_elements_text", "jsonb_array_elements", "unnest"})
"""Set-returning functions allowed in FROM (they expand a row's own JSON or array)."""

_REG_TYPES = ("REGCLASS", "REGPROC", "REGPROCEDURE", "REGOPER", "REGTYPE", "REGROLE",
              "REGNAMESPACE", "OID")


@dataclass(frozen=True)
class VerifiedQuery:
    sql: str
    """The SQL to run: regenerated from the checked tree, with the LIMIT enforced."""
    tables: tuple[str, ...]
    limit: int


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower()


def _check_function(node: exp.Func) -> None:
    name = _function_name(node)
    if name in BLOCKED_FUNCTIONS or name.startswith(_BLOCKED_PREFIXES):
        raise QueryRefused(f"function {name}() is not allowed in Oracle queries",
                           code="blocked_function")
    if isinstance(node, exp.Anonymous) and name not in ALLOWED_UNTYPED_FUNCTIONS:
        raise QueryRefused(f"function {name}() is not on the Oracle's list of known functions",
                           code="unknown_function")


def _is_cte_in_scope(table: exp.Table, name: str) -> bool:
    """True when a WITH clause enclosing ``table`` defines ``name`` (SQL's scoping rule)."""
    node: exp.Expression | None = table.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With) and any(
            cte.alias_or_name.lower() == name for cte in with_.expressions
        ):
            return True
        node = node.parent
    return False


def _check_tables(tree: exp.Expression) -> list[str]:
    used: list[str] = []
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func) and _function_name(table.this) in TABLE_FUNCTIONS:
            continue
        if not isinstance(table.this, exp.Identifier):
            raise QueryRefused("functions in FROM are not allowed; read the catalog's tables",
                               code="table_function")
        schema = table.db.lower() if table.db else ""
        if table.catalog or schema not in ("", "public"):
            raise QueryRefused(f"table {table.sql()} is outside the Oracle's catalog",
                               code="table_not_allowed")
        ident = table.this
        name = ident.name if ident.quoted else ident.name.lower()
        if not schema and _is_cte_in_scope(table, name):
            continue
        if name not in CATALOG:
            raise QueryRefused(f"table {name!r} is not in the Oracle's catalog; "
                               f"see /api/oracle/schema-catalog", code="table_not_allowed")
        used.append(name)
    return used


def _check_nodes(nodes: Iterable[exp.Expression]) -> None:
    for count, node in enumerate(nodes):
        if count > MAX_NODES:
            raise QueryRefused("query is too complex", code="too_complex")
        if isinstance(node, _WRITES):
            raise QueryRefused(f"{node.key.upper()} is not allowed: the Oracle only reads",
                               code="write_refused")
        if isinstance(node, exp.Func):
            _check_function(node)
        elif isinstance(node, exp.Column) and node.name.lower() in HIDDEN_COLUMNS:
            raise QueryRefused("the tenant is implied by who asks; do not reference tenant_id",
                               code="tenant_reference")
        elif isinstance(node, exp.Parameter | exp.Placeholder | exp.SessionParameter):
            raise QueryRefused("parameters and session variables are not allowed",
                               code="parameter")
        elif isinstance(node, exp.DataType) and node.sql().upper() in _REG_TYPES:
            raise QueryRefused("casts to catalog object types are not allowed",
                               code="catalog_cast")
        elif isinstance(node, exp.Identifier) and node.name.lower() in HIDDEN_COLUMNS:
            raise QueryRefused("the tenant is implied by who asks; do not reference tenant_id",
                               code="tenant_reference")


def _enforce_limit(tree: exp.Query, max_rows: int) -> int:
    """Cap the top-level row count at ``max_rows``; returns the limit that will apply."""
    limit = tree.args.get("limit")
    fetch = tree.args.get("fetch") if isinstance(tree, exp.Select) else None
    current: int | None = None
    clause = limit or fetch
    if clause is not None:
        value = clause.expression if isinstance(clause, exp.Limit) else clause.args.get("count")
        if isinstance(value, exp.Literal) and value.is_int:
            current = int(value.this)
    applied = max_rows if current is None else min(current, max_rows)
    if fetch is not None:
        tree.set("fetch", None)
    return_tree = tree.limit(applied, copy=False)
    assert return_tree is tree
    return applied


def verify(sql: str, *, max_rows: int) -> VerifiedQuery:
    """Check ``sql`` against every rule; `QueryRefused` names the first rule it breaks."""
    if not sql.strip():
        raise QueryRefused("empty query", code="empty")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"query longer than {MAX_SQL_CHARS} characters", code="too_complex")
    if "\x00" in sql:
        raise QueryRefused("query contains a NUL character", code="malformed_sql")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except SqlglotError as exc:
        raise QueryRefused(f"not valid PostgreSQL: {str(exc).splitlines()[0][:200]}",
                           code="malformed_sql") from None
    except RecursionError:
        raise QueryRefused("query is too complex", code="too_complex") from None
    if len(statements) != 1:
        raise QueryRefused("exactly one statement is allowed", code="multiple_statements")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.Union | exp.Intersect | exp.Except):
        raise QueryRefused(f"only SELECT is allowed, not {tree.key.upper()}",
                           code="write_refused")
    _check_nodes(tree.walk())
    tables = _check_tables(tree)
    limit = _enforce_limit(tree, max_rows)
    try:
        final = tree.sql(dialect="postgres", comments=False)
    except SqlglotError as exc:
        raise QueryRefused(f"cannot render the query: {exc}", code="malformed_sql") from None
    return VerifiedQuery(final, tuple(dict.fromkeys(tables)), limit)
