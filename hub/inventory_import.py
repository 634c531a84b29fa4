"""Inventory import batches: a CSV of units becomes projects, towers and units, all or none.

Every row is checked first (the unit's own validation, the project and tower it names, no unit
twice); one bad row refuses the whole batch with every problem listed by line, and nothing is
written. A clean batch is written in one transaction through the CRDT write path
(`hub.store.create_many`), so it reaches every device like any other change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from core.errors import VelocityError
from core.identity import Principal
from core.ids import new_id
from hub.import_batches import batch_view
from hub.import_csv import CsvRow, RowErrors, read_csv
from hub.service import Hub
from hub.store import create_many
from schema.models import Unit

COLUMNS = ("project", "tower", "unit_no", "configuration", "floor", "area_sqft", "price",
           "currency", "status", "facing")
REQUIRED = ("project", "unit_no", "configuration")
_FIELD_COLUMN = {"project_id": "project", "tower_id": "tower"}


async def import_inventory(hub: Hub, principal: Principal, filename: str, data: bytes,
                           *, dry_run: bool) -> dict[str, Any]:
    """Check and (unless ``dry_run``, or a row is bad) write one CSV of units; the batch as
    stored, with its status (validated, refused or committed), errors and summary."""
    batch_id = new_id()
    rows = read_csv(data, required=REQUIRED, known=COLUMNS)
    plan = await _plan(hub, principal, rows)
    status = "refused" if plan.errors else "validated" if dry_run else "committed"
    if status == "committed":
        try:
            await create_many(hub.writer, principal, plan.records)
        except VelocityError as exc:  # e.g. a unit created meanwhile: nothing was written
            plan.errors.add(0, None, f"{exc.message} (nothing was written; upload again)")
            status = "refused"
    summary = {"units": plan.units, "new_projects": plan.new_projects,
               "new_towers": plan.new_towers}
    row = await hub.storage.imports.add_inventory_batch(
        principal.tenant_id, batch_id, filename[:200], status, principal.user_id, len(rows),
        plan.errors.items, summary, principal.user_id if status == "committed" else None,
        datetime.now(UTC) if status == "committed" else None)
    return batch_view(dict(row))


class _Plan:
    def __init__(self) -> None:
        self.errors = RowErrors()
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        self.units = 0
        self.new_projects: list[str] = []
        self.new_towers: list[str] = []


async def _plan(hub: Hub, principal: Principal, rows: list[CsvRow]) -> _Plan:
    """The records a batch would create, or its errors."""
    tenant = principal.tenant_id
    plan = _Plan()
    project_rows, tower_rows, unit_rows = await hub.storage.imports.inventory_names(tenant)
    projects = {r["name"].lower(): r["id"] for r in project_rows}
    project_ids = set(projects.values())
    towers = {(r["project_id"], r["name"].lower()): r["id"] for r in tower_rows}
    existing = {(r["project_id"], r["tower_id"], r["unit_no"].lower()) for r in unit_rows}
    seen: dict[tuple[str, str | None, str], int] = {}
    base = {"tenant_id": tenant, "owner_id": principal.user_id, "team_id": principal.team_id,
            "created_at": datetime.now(UTC).isoformat()}
    for row in rows:
        v = row.values
        if row.extra_cells:
            plan.errors.add(row.line, None, "more cells than the header has columns")
        project = v.get("project", "")
        project_id = project if project in project_ids else projects.get(project.lower())
        if project_id is None and project:
            project_id = projects[project.lower()] = new_id()
            plan.records.append(("projects", project_id, {**base, "name": project}))
            plan.new_projects.append(project)
        tower_id = None
        if v.get("tower") and project_id is not None:
            tower_id = towers.get((project_id, v["tower"].lower()))
            if tower_id is None:
                tower_id = towers[project_id, v["tower"].lower()] = new_id()
                plan.records.append(("towers", tower_id, {**base, "project_id": project_id,
                                                          "name": v["tower"]}))
                plan.new_towers.append(f"{project} / {v['tower']}")
        values: dict[str, Any] = {**base, "project_id": project_id or "", "tower_id": tower_id,
                  **{k: v[k] for k in ("unit_no", "configuration", "floor", "area_sqft",
                                        "price", "currency", "status", "facing") if k in v}}
        if "status" in values:
            values["status"] = values["status"].upper()
            if values["status"] == "HELD":
                plan.errors.add(row.line, "status", "a hold is placed on the unit, not "
                                "imported: use AVAILABLE, BOOKED or SOLD")
                continue
        unit_id = new_id()
        try:
            Unit.model_validate({"id": unit_id, **values})
        except ValidationError as exc:
            plan.errors.add_validation(row.line, exc, _FIELD_COLUMN)
        key = (project_id or "", tower_id, v.get("unit_no", "").lower())
        if key[2] and key in existing:  # (a missing unit number: the model's error says so)
            plan.errors.add(row.line, "unit_no", f"unit {v['unit_no']} of {project} already "
                            "exists: change it in the inventory, not by import")
        elif key[2] and key in seen:
            plan.errors.add(row.line, "unit_no", f"unit {v['unit_no']} of {project} is also on "
                            f"line {seen[key]}")
        seen.setdefault(key, row.line)
        plan.records.append(("units", unit_id, values))
        plan.units += 1
    return plan
