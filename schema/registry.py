"""The collections of the schema: name, projection table, model and document layout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import BaseModel

from core.errors import UnknownCollection
from schema import models
from schema.crdt import FIELDS_ROOT, LIST_KINDS, CrdtKind, kind_of, list_root

BASE_FIELDS = ("id",)
"""Fields that are the document's identity, not stored inside it."""


@dataclass(frozen=True)
class Collection:
    """One kind of record: its guid prefix, relational table and pydantic model."""

    name: str
    table: str
    model: type[models.Record]
    owner_scoped: bool = False
    """Owner-scoped records (leads) are visible to junior brokers only when they own them."""
    manager_only_fields: frozenset[str] = field(default_factory=frozenset)
    """Fields only a SALES_DIRECTOR or ADMIN may set."""

    @cached_property
    def kinds(self) -> Mapping[str, CrdtKind]:
        return {
            name: kind_of(self.model, name)
            for name in self.model.model_fields
            if name not in BASE_FIELDS
        }

    @cached_property
    def registers(self) -> tuple[str, ...]:
        return tuple(n for n, k in self.kinds.items() if k is CrdtKind.REGISTER)

    @cached_property
    def texts(self) -> tuple[str, ...]:
        return tuple(n for n, k in self.kinds.items() if k is CrdtKind.TEXT)

    @cached_property
    def lists(self) -> tuple[str, ...]:
        """Set and ordered list fields."""
        return tuple(n for n, k in self.kinds.items() if k in LIST_KINDS)

    @cached_property
    def roots(self) -> Mapping[str, CrdtKind]:
        """Every root type a document of this collection is written in, by name."""
        roots: dict[str, CrdtKind] = {FIELDS_ROOT: CrdtKind.REGISTER}
        roots.update({n: CrdtKind.TEXT for n in self.texts})
        roots.update({list_root(n, self.kinds[n]): self.kinds[n] for n in self.lists})
        return roots

    @property
    def retired_roots(self) -> tuple[str, ...]:
        """Root Arrays of the former list layout (named after the field, replaced whole on each
        write): still read, and emptied by the first write of the field, never written."""
        return self.lists


def _c(name: str, table: str, model: type[models.Record], **kw: object) -> Collection:
    return Collection(name, table, model, **kw)  # type: ignore[arg-type]


COLLECTIONS: Mapping[str, Collection] = {
    c.name: c
    for c in (
        _c("people", "crm_people", models.Person),
        _c("accounts", "crm_accounts", models.Account),
        _c("households", "crm_households", models.Household),
        _c("relationships", "crm_relationships", models.Relationship),
        _c("leads", "crm_leads", models.Lead, owner_scoped=True),
        _c(
            "opportunities",
            "crm_opportunities",
            models.Opportunity,
            owner_scoped=True,
            manager_only_fields=frozenset({"stage", "value", "probability"}),
        ),
        _c("property_interests", "crm_property_interests", models.PropertyInterest),
        _c("stage_history", "crm_stage_history", models.StageChange),
        _c("projects", "inventory_projects", models.Project),
        _c("units", "inventory_units", models.Unit,
           manager_only_fields=frozenset({"price", "status"})),
        _c("interactions", "crm_interactions", models.Interaction),
        _c("tasks", "crm_tasks", models.Task),
        _c("qd_scores", "intel_qd_scores", models.QdScore),
        _c("facts", "intel_extracted_facts", models.ExtractedFact),
        _c("consents", "intel_biometric_consent", models.BiometricConsent),
        _c("perception_sessions", "intel_perception_sessions", models.PerceptionSession),
        _c("canvas_pages", "oracle_canvas_pages", models.CanvasPage),
        _c("towers", "inventory_towers", models.Tower),
        _c("unit_holds", "inventory_unit_holds", models.UnitHold),
        _c("unit_media", "inventory_media", models.UnitMedia),

        _c("comms_threads", "comms_threads", models.CommsThread, owner_scoped=True),
        _c("comms_messages", "comms_messages", models.CommsMessage, owner_scoped=True),
        _c("comm_events", "mobile_comm_events", models.CommEvent, owner_scoped=True),
        _c("transcript_segments", "mobile_transcript_segments", models.TranscriptSegment,
           owner_scoped=True),
        _c("memory_facts", "mobile_memory_facts", models.MemoryFact, owner_scoped=True),
        _c("calendar_events", "mobile_calendar_events", models.CalendarEvent, owner_scoped=True),
        _c("insights", "mobile_insights", models.Insight, owner_scoped=True),
        _c("gpu_requests", "intel_gpu_requests", models.GpuRequest),
    )
}


def collection(name: str) -> Collection:
    """Look up a collection; an unknown name is an `UnknownCollection` error."""
    try:
        return COLLECTIONS[name]
    except KeyError:
        raise UnknownCollection(f"unknown collection {name!r}") from None


def model_of(name: str) -> type[BaseModel]:
    return collection(name).model
