"""The schema: checked-in DDL matches the models; every collection's layout is consistent."""

from __future__ import annotations

from importlib import resources

import pytest

from schema import COLLECTIONS, FIELDS_ROOT, CrdtKind
from schema.ddl import render_projection_ddl


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_checked_in_projection_ddl_matches_the_models(dialect: str) -> None:
    checked_in = resources.files("schema.sql").joinpath(f"{dialect}_0001_projection.sql")
    assert checked_in.read_text() == render_projection_ddl(dialect), (
        "models changed: add a new numbered migration under schema/sql/")


def test_every_collection_has_visibility_and_a_fields_root() -> None:
    for coll in COLLECTIONS.values():
        assert coll.roots[FIELDS_ROOT] is CrdtKind.REGISTER
        assert {"tenant_id", "owner_id", "team_id", "deleted"} <= set(coll.registers)
        assert coll.table.split("_")[0] in ("crm", "intel", "inventory", "oracle")
