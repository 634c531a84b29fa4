"""What a surface sends to the mobile-edge routes: strict bodies, refused with 422 when wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schema.models import CalendarKind, CalendarStatus, CommChannel, MemoryCategory

Id = str
MAX_SEGMENTS = 2_000
MAX_FACTS = 50


def utc(value: datetime | None) -> datetime | None:
    """Every time is kept in UTC (a naive one is taken as UTC), so stored times sort as text."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LeadRef(Body):
    lead_id: Id = Field(min_length=1, max_length=64)


class EventIn(LeadRef):
    channel: CommChannel
    direction: Literal["inbound", "outbound"] | None = None
    occurred_at: datetime | None = Field(None, description="When it happened; default now")
    duration_s: int | None = Field(None, ge=0, le=86_400)
    summary: str | None = Field(None, max_length=1000)
    body: str = Field("", max_length=20_000)
    recording_ref: str | None = Field(None, max_length=500)

    _utc = field_validator("occurred_at")(utc)


class FactIn(Body):
    category: MemoryCategory
    fact: str = Field(min_length=1, max_length=500)
    confidence: float = Field(0.8, ge=0, le=1)


class NoteIn(LeadRef):
    text: str = Field(min_length=1, max_length=20_000)
    facts: list[FactIn] = Field([], max_length=MAX_FACTS)


class SegmentIn(Body):
    speaker: str = Field(min_length=1, max_length=80)
    start_ms: int = Field(ge=0, le=86_400_000)
    end_ms: int = Field(ge=0, le=86_400_000)
    text: str = Field(min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _ordered(self) -> SegmentIn:
        if self.end_ms < self.start_ms:
            raise ValueError("end_ms is before start_ms")
        return self


class ImportIn(LeadRef):
    """An operator-assisted import of a recording (with its transcript) or a written note."""

    kind: Literal["recording", "note"]
    channel: CommChannel = CommChannel.CALL
    occurred_at: datetime
    duration_s: int | None = Field(None, ge=0, le=86_400)
    summary: str | None = Field(None, max_length=1000)
    text: str = Field("", max_length=20_000)
    recording_ref: str | None = Field(None, max_length=500)
    transcript: list[SegmentIn] = Field([], max_length=MAX_SEGMENTS)
    facts: list[FactIn] = Field([], max_length=MAX_FACTS)

    _utc = field_validator("occurred_at")(utc)

    @model_validator(mode="after")
    def _has_content(self) -> ImportIn:
        if self.kind == "recording" and not (self.transcript or self.recording_ref):
            raise ValueError("a recording import needs its transcript or a recording_ref")
        if self.kind == "note" and not self.text:
            raise ValueError("a note import needs its text")
        return self


class CalendarIn(Body):
    title: str = Field(min_length=1, max_length=200)
    kind: CalendarKind = CalendarKind.MEETING
    starts_at: datetime
    duration_min: int = Field(60, ge=0, le=10_080)
    location: str | None = Field(None, max_length=300)
    lead_id: Id | None = Field(None, min_length=1, max_length=64)
    notes: str = Field("", max_length=20_000)

    _utc = field_validator("starts_at")(utc)


class CalendarPatch(Body):
    """The fields to change; only those sent are written (so other devices' edits of other
    fields survive the merge)."""

    title: str | None = Field(None, min_length=1, max_length=200)
    kind: CalendarKind | None = None
    starts_at: datetime | None = None
    duration_min: int | None = Field(None, ge=0, le=10_080)
    location: str | None = Field(None, max_length=300)
    status: Literal[CalendarStatus.SCHEDULED, CalendarStatus.DONE] | None = None
    notes: str | None = Field(None, max_length=20_000)

    _utc = field_validator("starts_at")(utc)


class DecisionIn(Body):
    action: Literal["act", "dismiss"]
    note: str | None = Field(None, max_length=500)


class HeartbeatIn(Body):
    surface_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    surface: Literal["ipad_app", "phone_app", "kiosk", "webos"]
    state: Literal["foreground", "background", "closed"] = "foreground"
    app_version: str | None = Field(None, max_length=40)
