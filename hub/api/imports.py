"""Import batches over REST, for directors and admins: inventory CSVs (checked, then written
whole or refused whole) and CRM CSVs (proposals → review → commit)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import BaseModel, Field

from hub import crm_import, import_batches
from hub.api.crm import Limit, Offset
from hub.api.deps import HubDep, ManagerDep
from hub.import_csv import MAX_CSV_BYTES
from hub.inventory_import import import_inventory

router = APIRouter(tags=["imports"])
CsvFile = Annotated[UploadFile, File(description="A CSV file, UTF-8, with a header row")]
CountryCode = Annotated[str, Query(pattern=r"^[1-9]\d{0,3}$",
                                   description="For 10-digit numbers without one")]


class ReviewIn(BaseModel):
    decision: Literal["accepted", "rejected"]
    row: int | None = Field(None, ge=2, description="The proposal's line; none: every pending "
                            "create and merge")
    person_id: str | None = Field(None, max_length=64,
                                  description="The candidate a conflict is merged into")


async def _read(upload: UploadFile) -> bytes:
    return await upload.read(MAX_CSV_BYTES + 1)


@router.post("/api/inventory/import-batches", status_code=201)
async def create_inventory_batch(file: CsvFile, principal: ManagerDep, hub: HubDep,
                                 dry_run: bool = False) -> dict[str, Any]:
    """Import units (and the projects and towers they name): all rows or, on any bad row,
    none (the batch is stored as refused with every problem by line)."""
    return await import_inventory(hub, principal, file.filename or "upload.csv",
                                  await _read(file), dry_run=dry_run)


@router.get("/api/inventory/import-batches")
async def inventory_batches(principal: ManagerDep, hub: HubDep, limit: Limit = 50,
                            offset: Offset = 0) -> list[dict[str, Any]]:
    return await import_batches.batches(hub, principal, "inventory", limit, offset)


@router.get("/api/inventory/import-batches/{batch_id}")
async def inventory_batch(batch_id: str, principal: ManagerDep, hub: HubDep) -> dict[str, Any]:
    return await import_batches.batch(hub, principal, batch_id, "inventory")


@router.post("/api/crm/imports", status_code=201)
async def create_crm_batch(file: CsvFile, principal: ManagerDep, hub: HubDep,
                           country_code: CountryCode = "91") -> dict[str, Any]:
    """Upload contacts: the batch's proposals (create, merge, conflict), nothing written yet;
    a file with a bad row is refused whole."""
    return await crm_import.propose(hub, principal, file.filename or "upload.csv",
                                    await _read(file), country_code)


@router.get("/api/crm/imports")
async def crm_batches(principal: ManagerDep, hub: HubDep, limit: Limit = 50,
                      offset: Offset = 0) -> list[dict[str, Any]]:
    return await import_batches.batches(hub, principal, "crm", limit, offset)


@router.get("/api/crm/imports/{batch_id}")
async def crm_batch(batch_id: str, principal: ManagerDep, hub: HubDep) -> dict[str, Any]:
    return await import_batches.batch(hub, principal, batch_id)


@router.put("/api/crm/imports/{batch_id}/review-proposal")
async def review_proposal(batch_id: str, body: ReviewIn, principal: ManagerDep, hub: HubDep
                          ) -> dict[str, Any]:
    return await crm_import.review(hub, principal, batch_id, body.row, body.decision,
                                   body.person_id)


@router.post("/api/crm/imports/{batch_id}/commit")
async def commit_batch(batch_id: str, principal: ManagerDep, hub: HubDep,
                       dry_run: bool = False) -> dict[str, Any]:
    """Write the accepted proposals in one transaction (``dry_run``: report only)."""
    return await crm_import.commit(hub, principal, batch_id, dry_run=dry_run)
