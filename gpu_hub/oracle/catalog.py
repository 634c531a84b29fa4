"""The semantic catalog: the projection tables the Oracle may read, what each column means and
which values are valid. The planner is prompted with it; the verifier allow-lists its tables."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic.fields import FieldInfo

from schema import COLLECTIONS, Collection

HIDDEN_COLUMNS = frozenset({"tenant_id"})
"""Never shown or referenced: the tenant is implied by who asks."""

EXCLUDED_COLLECTIONS = frozenset({"canvas_pages", "gpu_requests"})
"""Collections that are not analytics data (canvases and GPU requests hold Oracle answers
themselves, each in its asker's scope)."""

TABLE_MEANING = {
    "people": "Contacts (clients and family members); one row per person.",
    "accounts": "Companies, family offices and other accounts people invest through.",
    "households": "Family / co-buyer groups.",
    "relationships": "Person-to-person links (spouse, …).",
    "leads": "The sales funnel: one lead per person's interest in a project, with its stage.",
    "opportunities": "Deals on a specific unit, with value and probability.",
    "property_interests": "Which project / configuration a person is interested in, level 1-5.",
    "stage_history": "Every lead stage change with its time (use for funnel timing).",
    "projects": "Real-estate projects (developments) being sold.",
    "units": "Individual apartments / villas of a project, with price and status.",
    "interactions": "Messages, calls, emails, site visits and notes with people "
                    "(the recency timeline: use occurred_at).",
    "tasks": "Broker follow-up tasks and reminders.",
    "qd_scores": "QD (Qualification Desire) engagement scores 1-100 from Sentinel sessions.",
    "facts": "Facts extracted from conversations: budget, objection, timeline, preference.",
    "consents": "Biometric consent grants for Sentinel sessions (revoked_at when withdrawn).",
    "perception_sessions": "Sentinel kiosk sessions with their final QD.",
    "towers": "Towers (or phases) of a project.",
    "unit_holds": "Brokers' holds on units (id = the unit's id); a unit is held while "
                  "holder_id is set and expires_at is in the future or null.",
    "unit_media": "References to brochures, renders, floor plans and tours of units or "
                  "projects (uri, kind).",
}

COLUMN_MEANING = {
    "id": "Primary key of the row.",
    "owner_id": "User id of the broker who owns the record.",
    "team_id": "Team of the owning broker.",
    "created_at": "When the record was created.",
    "deleted": "Always false here (deleted rows are hidden).",
    "person_id": "The person (people.id) this row is about.",
    "lead_id": "The lead (leads.id) this row belongs to.",
    "project_id": "The project (projects.id).",
    "unit_id": "The unit (units.id).",
    "stage": "Funnel stage (leads: NEW to WON or LOST; opportunities: PROSPECTING to "
             "CLOSED_WON or CLOSED_LOST; tasks use status).",
    "status": "Current status (units: AVAILABLE, BOOKED, SOLD, a held unit is AVAILABLE with a "
              "live unit_holds row; tasks: OPEN, DONE, CANCELLED).",
    "tower_id": "The tower (towers.id).",
    "holder_id": "The broker holding the unit (null once released).",
    "expires_at": "When the hold lapses.",
    "facing": "What the unit faces: sea, garden, city, east, west, pool.",
    "segment": "Client segment: whale (ultra high net worth), hni, nri, investor, end_user.",
    "source": "Where the lead or person came from (referral, website, instagram, walk_in, "
              "channel_partner, event) or, for QD scores, the scorer (sentinel).",
    "budget_min": "Lower end of the client's budget, in currency units (INR: 1 Cr = 1e7).",
    "budget_max": "Upper end of the client's budget, in currency units (INR: 1 Cr = 1e7).",
    "last_qd": "Latest QD engagement score 1-100 of the lead (null when never scored).",
    "score": "QD engagement score, 1 (cold) to 100 (eager to buy).",
    "value": "Deal value in currency units (opportunities) / fact text (facts).",
    "probability": "Chance the deal closes, 0 to 1.",
    "price": "List price of the unit in currency units.",
    "area_sqft": "Carpet area in square feet.",
    "configuration": "Unit type: 2BHK, 3BHK, 4BHK, Penthouse, Villa.",
    "occurred_at": "When the interaction happened.",
    "scored_at": "When the QD score was taken.",
    "changed_at": "When the stage changed.",
    "due_at": "When the task is due.",
    "tags": "JSON array of short labels.",
    "signals": "JSON array of engagement signals.",
    "level": "Interest level 1 (mild) to 5 (strong).",
    "priority": "Task priority 1 (high) to 3 (low).",
    "confidence": "Extraction confidence 0 to 1.",
    "timeline": "When the client intends to buy, free text.",
    "direction": "inbound or outbound.",
    "channel": "whatsapp, phone, email, site or crm.",
    "duration_s": "Call length in seconds.",
}

_KNOWN_VALUES = {
    "segment": ("whale", "hni", "nri", "investor", "end_user"),
    "configuration": ("2BHK", "3BHK", "4BHK", "Penthouse", "Villa"),
    "direction": ("inbound", "outbound"),
    "channel": ("whatsapp", "phone", "email", "site", "crm"),
}


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    meaning: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    collection: str
    meaning: str
    columns: tuple[Column, ...]
    owner_scoped: bool

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.name, "meaning": self.meaning, "columns": [
            {"name": c.name, "type": c.sql_type, "meaning": c.meaning,
             **({"values": list(c.values)} if c.values else {})} for c in self.columns]}


def _unwrap(annotation: Any) -> Any:
    """The inner type of ``X | None`` and ``Annotated[X, …]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation


def _column(name: str, info: FieldInfo) -> Column:
    inner = _unwrap(info.annotation)
    values: tuple[str, ...] = _KNOWN_VALUES.get(name, ())
    if isinstance(inner, type) and issubclass(inner, StrEnum):
        values = tuple(m.value for m in inner)
    sql_type = ("timestamptz" if inner is datetime else "date" if inner is date
                else "boolean" if inner is bool else "bigint" if inner is int
                else "double precision" if inner is float
                else "jsonb" if typing.get_origin(inner) in (list, dict) else "text")
    return Column(name, sql_type, COLUMN_MEANING.get(name, ""), values)


def _table(coll: Collection) -> Table:
    columns = tuple(_column(n, f) for n, f in coll.model.model_fields.items()
                    if n not in HIDDEN_COLUMNS)
    return Table(coll.table, coll.name, TABLE_MEANING.get(coll.name, ""), columns,
                 coll.owner_scoped)


CATALOG: dict[str, Table] = {
    c.table: _table(c) for c in COLLECTIONS.values() if c.name not in EXCLUDED_COLLECTIONS
}
"""Allow-listed tables by name."""


def catalog_text() -> str:
    """The catalog as compact text for the planner's prompt."""
    lines = []
    for table in CATALOG.values():
        lines.append(f"TABLE {table.name} -- {table.meaning}")
        for c in table.columns:
            extra = f" values: {', '.join(c.values)}." if c.values else ""
            lines.append(f"  {c.name} {c.sql_type}  {c.meaning}{extra}".rstrip())
    return "\n".join(lines)
