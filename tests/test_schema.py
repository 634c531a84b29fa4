"""The schema: checked-in DDL matches the models; every collection's layout is consistent."""

from __future__ import annotations

from importlib import resources

from schema import COLLECTIONS, FIELDS_ROOT, CrdtKind
from schema.ddl import render_projection_ddl


def test_the_edge_projection_ddl_matches_the_models() -> None:
    """The edge's projection tables are temporary, rebuilt from this file at every open."""
    checked_in = resources.files("schema.sql").joinpath("sqlite_0001_projection.sql")
    assert checked_in.read_text() == render_projection_ddl("sqlite"), (
        "models changed: regenerate schema/sql/sqlite_0001_projection.sql")


def test_every_collection_has_visibility_and_a_fields_root() -> None:
    for coll in COLLECTIONS.values():
        assert coll.roots[FIELDS_ROOT] is CrdtKind.REGISTER
        assert {"tenant_id", "owner_id", "team_id", "deleted"} <= set(coll.registers)
        assert coll.table.split("_")[0] in ("crm", "intel", "inventory", "oracle", "comms",
                                            "mobile")
