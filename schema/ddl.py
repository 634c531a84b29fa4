"""SQL DDL of the projection tables, rendered from the models for PostgreSQL or SQLite.

PostgreSQL: ``postgres_0001_projection.sql`` is the first numbered migration and never changes;
a new collection or field comes as the next numbered file (``CREATE TABLE`` rendered by
`render_table`, or ``ALTER TABLE … ADD COLUMN``). A test applies every migration to an empty
database and fails when the result differs from the models. SQLite: the edge rebuilds its
(temporary) projection tables at every open from ``sqlite_0001_projection.sql``, which a test
keeps equal to `render_projection_ddl`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal, Union, get_args, get_origin

from schema.crdt import LIST_KINDS
from schema.registry import COLLECTIONS, Collection

Dialect = Literal["postgres", "sqlite"]

_TYPES: dict[Dialect, dict[str, str]] = {
    "postgres": {
        "str": "text", "int": "bigint", "float": "double precision", "bool": "boolean",
        "datetime": "timestamptz", "date": "date", "json": "jsonb",
    },
    "sqlite": {
        "str": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "INTEGER",
        "datetime": "TEXT", "date": "TEXT", "json": "TEXT",
    },
}


def _base_type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    if origin is not None and origin.__name__ == "Annotated":
        return _base_type(get_args(annotation)[0])
    if origin in (list, dict):
        return "json"
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return "str"
        if issubclass(annotation, bool):
            return "bool"
        if issubclass(annotation, datetime):
            return "datetime"
        if issubclass(annotation, date):
            return "date"
        for name in ("int", "float", "str"):
            if annotation.__name__ == name:
                return name
    raise TypeError(f"no SQL type for {annotation!r}")


_COLUMN_TYPES: dict[str, Mapping[str, str]] = {}


def column_types(coll: Collection) -> Mapping[str, str]:
    """Field name → dialect-neutral SQL type name (str, int, float, bool, datetime, date, json);
    worked out once per collection (every projected row asks)."""
    cached = _COLUMN_TYPES.get(coll.name)
    if cached is None:
        cached = _COLUMN_TYPES[coll.name] = MappingProxyType(_column_types(coll))
    return cached


def _column_types(coll: Collection) -> dict[str, str]:
    out = {}
    for name, info in coll.model.model_fields.items():
        if coll.kinds.get(name) in LIST_KINDS:
            out[name] = "json"
        else:
            out[name] = _base_type(info.annotation)
    return out


def render_table(coll: Collection, dialect: Dialect) -> str:
    types_ = _TYPES[dialect]
    cols = [f"    {n} {types_[t]}" for n, t in column_types(coll).items() if n != "tenant_id"]
    lines = [f"CREATE TABLE IF NOT EXISTS {coll.table} (", "    tenant_id text NOT NULL,"]
    lines += [c + "," for c in cols]
    lines.append("    PRIMARY KEY (tenant_id, id)")
    lines.append(");")
    lines.append(
        f"CREATE INDEX IF NOT EXISTS {coll.table}_owner ON {coll.table} (tenant_id, owner_id);"
    )
    return "\n".join(lines)


def render_projection_ddl(dialect: Dialect) -> str:
    """Every projection table of the schema, in a stable order."""
    header = f"-- Projection tables rendered by schema/ddl.py for {dialect}; do not edit.\n"
    return header + "\n\n".join(render_table(c, dialect) for c in COLLECTIONS.values()) + "\n"
