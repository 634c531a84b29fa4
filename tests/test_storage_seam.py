"""The store seam holds: outside the hub's storage layer no module of the hub, the CLI or the
seeds holds SQL or queries the database itself.

SQL is recognised in string literals (statements, placeholders such as ``$1``, casts, ILIKE,
NULLS LAST, pg_ functions) and database access in attribute names (``.pool``, ``.fetch*``,
``.execute*``, ``.copy_records_to_table``). Docstrings are prose and are not read, nor is the
SQL handed to an edge replica's own ``Replica.query`` (SQLite on the device, as the demo reads
its devices).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("hub", "cli", "seeds")
STORAGE = ("hub/storage/", "hub/store.py")
"""The storage layer: `hub.storage` and the sync store (log, commit, documents) it exposes."""
ALLOWED = {
    "hub/database.py": "the pool, and LISTEN/NOTIFY between hub processes",
    "hub/scope.py": "the read rule as SQL, beside the same rule in Python (may_read)",
    "hub/migrations/__init__.py": "applies the numbered schema migrations",
    "hub/service.py": "hands the pool to gpu_hub's own job store",
    "cli/gpu.py": "hands the pool to gpu_hub's own job store",
}
"""Modules outside the storage layer that may touch the database, and why."""
NOT_YET_MOVED: set[str] = set()
"""Modules whose SQL has still to move into `hub.storage`: this list only shrinks."""

_SQL = re.compile(
    r"\b(?:SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|ON\s+CONFLICT|SHOW\s+\w+|"
    r"NULLS\s+(?:FIRST|LAST)|ILIKE|LOCK\s+TABLE)\b|\bpg_\w+\(|\$\d+\b|"
    r"::(?:text|int|bigint|jsonb|bytea)\b")
_ACCESS = frozenset({"pool", "fetch", "fetchrow", "fetchval", "execute", "executemany",
                     "copy_records_to_table"})


def _not_hub_sql(tree: ast.AST) -> set[int]:
    """Ids of the string nodes that are prose or an edge replica's SQL: docstrings (modules,
    classes, functions, attributes) and the first argument of ``<x>.replica.query(...)``."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "query" and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "replica" and node.args):
            found.add(id(node.args[0]))
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for i, stmt in enumerate(body):
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                    and (i == 0 or isinstance(body[i - 1], ast.Assign | ast.AnnAssign))):
                found.add(id(stmt.value))
    return found


def database_use(source: str) -> list[str]:
    """Where ``source`` holds SQL or touches the database: ``line: what``."""
    tree = ast.parse(source)
    prose = _not_hub_sql(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in prose and _SQL.search(node.value)):
            found.append(f"{node.lineno}: SQL {node.value[:50]!r}")
        elif isinstance(node, ast.Attribute) and node.attr in _ACCESS:
            found.append(f"{node.lineno}: .{node.attr}")
    return found


def _modules() -> dict[str, str]:
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
            for top in SCANNED for p in sorted((ROOT / top).rglob("*.py"))}


def test_sql_lives_in_the_storage_layer() -> None:
    offenders = {}
    for name, source in _modules().items():
        if name.startswith(STORAGE) or name in ALLOWED or name in NOT_YET_MOVED:
            continue
        if found := database_use(source):
            offenders[name] = found
    assert not offenders, f"SQL outside hub/storage/ (move it into a store): {offenders}"


def test_the_allow_lists_only_name_modules_that_need_them() -> None:
    """A module moved into the store leaves `NOT_YET_MOVED`, so the list only shrinks."""
    modules = _modules()
    stale = sorted(n for n in {*NOT_YET_MOVED, *ALLOWED}
                   if n not in modules or not database_use(modules[n]))
    assert not stale, f"no SQL left in {stale}: take them off the allow-list"


def test_the_detector_sees_sql_and_database_access() -> None:
    assert database_use('rows = await db.pool.fetch("SELECT 1")')
    assert database_use('where = "t.person_id = $4"')
    assert database_use('order = "t.value DESC NULLS LAST, t.id"')
    assert database_use("await conn.execute(sql)")
    assert database_use('rows = await replica.fetch("SELECT 1")')
    assert not database_use('"""Select the leads (prose)."""\nx = "t.person_id"')
    assert not database_use('rows = await ipad.replica.query("SELECT * FROM temp.t")')
    assert database_use('rows = await hub.query("SELECT * FROM crm_people")')
