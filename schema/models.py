"""Pydantic models of the CRM domain: every record kind that lives as one CRDT document."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schema.crdt import CrdtKind, LongText, StringSet

Money = Annotated[float, Field(ge=0, le=1e12)]
Tags = StringSet


class Record(BaseModel):
    """Columns every record carries; tenant, owner and team are its visibility."""

    model_config = ConfigDict(extra="forbid", str_max_length=20_000)

    id: str
    tenant_id: str = Field(min_length=1, max_length=64)
    owner_id: str | None = None
    team_id: str | None = None
    created_at: datetime | None = None
    deleted: bool = False


class LeadStage(StrEnum):
    NEW = "NEW"
    CONTACTED = "CONTACTED"
    QUALIFIED = "QUALIFIED"
    SITE_VISIT = "SITE_VISIT"
    NEGOTIATION = "NEGOTIATION"
    WON = "WON"
    LOST = "LOST"


class OpportunityStage(StrEnum):
    PROSPECTING = "PROSPECTING"
    PROPOSAL = "PROPOSAL"
    NEGOTIATION = "NEGOTIATION"
    BOOKING = "BOOKING"
    CLOSED_WON = "CLOSED_WON"
    CLOSED_LOST = "CLOSED_LOST"


class InteractionKind(StrEnum):
    MESSAGE = "message"
    CALL = "call"
    EMAIL = "email"
    VISIT = "visit"
    NOTE = "note"


class UnitStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    HELD = "HELD"
    BOOKED = "BOOKED"
    SOLD = "SOLD"


class TaskStatus(StrEnum):
    OPEN = "OPEN"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class FactKind(StrEnum):
    BUDGET = "budget"
    OBJECTION = "objection"
    TIMELINE = "timeline"
    PREFERENCE = "preference"


class Person(Record):
    full_name: str = Field(min_length=1, max_length=200)
    primary_phone: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)
    city: str | None = None
    country: str | None = None
    nationality: str | None = None
    segment: str | None = None
    source: str | None = None
    account_id: str | None = None
    household_id: str | None = None
    tags: Tags = []
    notes: LongText = ""


class Account(Record):
    name: str = Field(min_length=1, max_length=200)
    kind: str = "individual"
    notes: LongText = ""


class Household(Record):
    name: str = Field(min_length=1, max_length=200)
    primary_person_id: str | None = None
    city: str | None = None


class Relationship(Record):
    person_id: str
    related_person_id: str
    kind: str = Field(min_length=1, max_length=40)


class Lead(Record):
    person_id: str
    stage: LeadStage = LeadStage.NEW
    source: str | None = None
    project_id: str | None = None
    budget_min: Money | None = None
    budget_max: Money | None = None
    currency: str = "INR"
    timeline: str | None = None
    last_qd: int | None = Field(None, ge=1, le=100)
    tags: Tags = []
    notes: LongText = ""


class Opportunity(Record):
    lead_id: str | None = None
    person_id: str
    unit_id: str | None = None
    stage: OpportunityStage = OpportunityStage.PROSPECTING
    value: Money | None = None
    currency: str = "INR"
    probability: float | None = Field(None, ge=0, le=1)
    expected_close: date | None = None
    notes: LongText = ""


class PropertyInterest(Record):
    person_id: str
    project_id: str | None = None
    unit_id: str | None = None
    configuration: str | None = None
    level: int = Field(3, ge=1, le=5)


class StageChange(Record):
    lead_id: str | None = None
    opportunity_id: str | None = None
    from_stage: str | None = None
    to_stage: str
    changed_by: str | None = None
    changed_at: datetime


class Project(Record):
    name: str = Field(min_length=1, max_length=200)
    city: str | None = None
    developer: str | None = None
    status: str = "selling"
    description: LongText = ""


class Unit(Record):
    project_id: str
    unit_no: str = Field(min_length=1, max_length=40)
    configuration: str
    floor: int | None = Field(None, ge=-5, le=300)
    area_sqft: float | None = Field(None, gt=0, le=1e6)
    price: Money | None = None
    currency: str = "INR"
    status: UnitStatus = UnitStatus.AVAILABLE
    tower_id: str | None = None
    facing: str | None = Field(None, max_length=40)


class Interaction(Record):
    person_id: str
    lead_id: str | None = None
    kind: InteractionKind
    channel: str | None = None
    direction: str | None = None
    occurred_at: datetime
    duration_s: int | None = Field(None, ge=0)
    summary: str | None = Field(None, max_length=1000)
    body: LongText = ""
    thread_id: str | None = None
    """The conversation a note was made from, if any."""


class Task(Record):
    title: str = Field(min_length=1, max_length=300)
    person_id: str | None = None
    lead_id: str | None = None
    assignee_id: str | None = None
    due_at: datetime | None = None
    status: TaskStatus = TaskStatus.OPEN
    priority: int = Field(2, ge=1, le=3)
    notes: LongText = ""
    thread_id: str | None = None
    """The conversation the task was made from, if any."""


class QdScore(Record):
    person_id: str | None = None
    lead_id: str | None = None
    session_id: str | None = None
    score: int | None = Field(None, ge=1, le=100)
    source: str = "sentinel"
    scored_at: datetime
    signals: Tags = []

    @model_validator(mode="after")
    def _scored_unless_purged(self) -> QdScore:
        """A live score has a value; a purged one (consent revoked) keeps none."""
        if self.score is None and not self.deleted:
            raise ValueError("score is required (only a purged QD score has none)")
        return self


class ExtractedFact(Record):
    person_id: str
    interaction_id: str | None = None
    kind: FactKind
    value: str = Field(min_length=1, max_length=500)
    confidence: float = Field(0.8, ge=0, le=1)


class BiometricConsent(Record):
    person_id: str | None = None
    lead_id: str | None = None
    session_id: str
    scope: str = "sentinel_qd"
    method: str = "kiosk_tap"
    granted_at: datetime
    revoked_at: datetime | None = None


class PerceptionSession(Record):
    person_id: str | None = None
    lead_id: str | None = None
    consent_id: str
    asset_id: str | None = None
    started_at: datetime
    completed_at: datetime | None = None
    qd_final: int | None = Field(None, ge=1, le=100)
    frames_seen: int = Field(0, ge=0)
    signals: Tags = []


class ComponentType(StrEnum):
    KPI = "kpi"
    BAR_CHART = "bar_chart"
    LINE_CHART = "line_chart"
    TABLE = "table"
    ACTIVITY_STREAM = "activity_stream"
    PIPELINE_BOARD = "pipeline_board"
    CLIENT_SUMMARY = "client_summary"


class CanvasSharing(StrEnum):
    """Who may view a canvas page besides its owner and named users."""

    PRIVATE = "private"
    TEAM = "team"
    TENANT = "tenant"


class CanvasComponent(BaseModel):
    """One component of a canvas page: what it shows, where its data comes from, the rows."""

    model_config = ConfigDict(extra="forbid", str_max_length=20_000)

    id: str = Field(min_length=1, max_length=64)
    type: ComponentType
    title: str = Field("", max_length=200)
    config: dict[str, Any] = {}
    source: dict[str, Any] = {}
    """``{"kind": "sql" | "named_query", "text": ...}``: how the rows were obtained."""
    data_rows: list[dict[str, Any]] = Field([], max_length=5_000)
    layout: dict[str, Any] = {}
    """Position and size on the page, e.g. ``{"x": 0, "y": 0, "w": 4, "h": 3}``."""


class CanvasPage(Record):
    title: str = Field(min_length=1, max_length=200)
    components: Annotated[list[CanvasComponent], CrdtKind.ORDERED] = []
    narrative: LongText = ""
    sharing: CanvasSharing = CanvasSharing.PRIVATE
    editors: Tags = []
    """Users who may edit besides the owner."""
    viewers: Tags = []
    """Users who may view besides the owner, the editors and the sharing audience."""


# --- inventory: towers, holds, media ------------------------------------------------------------


class Tower(Record):
    project_id: str
    name: str = Field(min_length=1, max_length=100)
    floors: int | None = Field(None, ge=1, le=300)
    handover: date | None = None


class UnitHold(Record):
    """A broker's hold on one unit; its id is the unit's, so every hold of a unit is one
    document and two brokers holding it offline write the same record (the hub arbitrates)."""

    unit_id: str
    project_id: str | None = None
    holder_id: str | None = None
    """The broker who holds the unit; None once the hold is released."""
    claims: Tags = []
    """Who claims the unit: the holder alone. Concurrent offline holds both show here (a set
    keeps every add), which is how the hub sees the second one and refuses it."""
    lead_id: str | None = None
    person_id: str | None = None
    held_at: datetime | None = None
    expires_at: datetime | None = None
    released_at: datetime | None = None
    note: str | None = Field(None, max_length=500)


class MediaKind(StrEnum):
    IMAGE = "image"
    FLOOR_PLAN = "floor_plan"
    VIDEO = "video"
    BROCHURE = "brochure"
    TOUR = "tour"


class UnitMedia(Record):
    """A reference to media of a unit (or a whole project): where it is, never its bytes."""

    unit_id: str | None = None
    project_id: str | None = None
    kind: MediaKind = MediaKind.IMAGE
    uri: str = Field(min_length=1, max_length=2000)
    caption: str | None = Field(None, max_length=300)
    position: int = Field(0, ge=0, le=10_000)

# --- Comms: WhatsApp-style conversations ----------------------------------------------------------

E164 = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
"""A phone number normalised by `comms.phone.normalise`: ``+`` and 7 to 15 digits."""


class MessageDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(StrEnum):
    """An outbound message is queued where it is written, then the provider reports it; an
    inbound message is received."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    RECEIVED = "received"


class CommsThread(Record):
    """A conversation with one phone number over one provider channel, linked to a person."""

    channel_id: str = Field(min_length=1, max_length=64)
    phone: E164
    display_name: str | None = Field(None, max_length=200)
    person_id: str | None = None
    archived: bool = False


class CommsMessage(Record):
    """One message of a thread; a voice note or picture is a reference to the provider's file."""

    thread_id: str
    direction: MessageDirection
    body: str = Field("", max_length=4096)
    media_url: str | None = Field(None, max_length=2048)
    media_type: str | None = Field(None, max_length=100)
    media_seconds: int | None = Field(None, ge=0, le=86_400)
    status: MessageStatus
    provider_message_id: str | None = Field(None, max_length=200)
    error: str | None = Field(None, max_length=500)
    occurred_at: datetime
    author_id: str | None = None
# --- Mobile edge: what a broker's phone or iPad records around a lead ---------------------------


class CommChannel(StrEnum):
    CALL = "call"
    WHATSAPP = "whatsapp"
    SMS = "sms"
    EMAIL = "email"
    MEETING = "meeting"
    SITE_VISIT = "site_visit"
    NOTE = "note"


class EventSource(StrEnum):
    """How a communication event reached the system."""

    LOGGED = "logged"
    NOTE = "note"
    IMPORT = "import"


class CommEvent(Record):
    """One communication with a lead (a call, a message thread, a meeting, a quick note)."""

    lead_id: str
    person_id: str | None = None
    channel: CommChannel
    direction: str | None = Field(None, pattern="^(inbound|outbound)$")
    occurred_at: datetime
    duration_s: int | None = Field(None, ge=0, le=86_400)
    source: EventSource = EventSource.LOGGED
    summary: str | None = Field(None, max_length=1000)
    body: LongText = ""
    recording_ref: str | None = Field(None, max_length=500)
    """Where the operator keeps the recording (never the audio itself)."""


class TranscriptSegment(Record):
    """One utterance of an event's transcript, in order by ``position``."""

    event_id: str
    lead_id: str
    position: int = Field(ge=0, le=100_000)
    speaker: str = Field(min_length=1, max_length=80)
    start_ms: int = Field(0, ge=0, le=86_400_000)
    end_ms: int = Field(0, ge=0, le=86_400_000)
    text: str = Field(min_length=1, max_length=5000)


class MemoryCategory(StrEnum):
    BUDGET = "budget"
    TIMELINE = "timeline"
    PREFERENCE = "preference"
    OBJECTION = "objection"
    FAMILY = "family"
    FINANCING = "financing"
    OTHER = "other"


class MemoryFact(Record):
    """Something the broker learned about a lead, kept for the next conversation."""

    lead_id: str
    person_id: str | None = None
    event_id: str | None = None
    category: MemoryCategory
    fact: str = Field(min_length=1, max_length=500)
    confidence: float = Field(0.8, ge=0, le=1)


class CalendarKind(StrEnum):
    MEETING = "meeting"
    SITE_VISIT = "site_visit"
    CALL = "call"
    FOLLOW_UP = "follow_up"


class CalendarStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    DONE = "done"


class CalendarEvent(Record):
    """A broker's appointment; every field is its own register, so offline edits merge. Its
    length is a duration, not an end time: a move on one device and a longer meeting on
    another merge into a valid appointment (two end-time edits could not)."""

    title: str = Field(min_length=1, max_length=200)
    kind: CalendarKind = CalendarKind.MEETING
    starts_at: datetime
    duration_min: int = Field(60, ge=0, le=10_080)
    location: str | None = Field(None, max_length=300)
    lead_id: str | None = None
    person_id: str | None = None
    status: CalendarStatus = CalendarStatus.SCHEDULED
    notes: LongText = ""


class InsightKind(StrEnum):
    NEXT_BEST_ACTION = "next_best_action"
    RISK = "risk"
    UPSELL = "upsell"
    FOLLOW_UP = "follow_up"


class InsightStatus(StrEnum):
    OPEN = "open"
    ACTED = "acted"
    DISMISSED = "dismissed"


class Insight(Record):
    """A recommendation about a lead, decided once: acted on or dismissed."""

    lead_id: str
    kind: InsightKind = InsightKind.NEXT_BEST_ACTION
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=2000)
    priority: int = Field(2, ge=1, le=3)
    status: InsightStatus = InsightStatus.OPEN
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = Field(None, max_length=500)


class GpuRequestKind(StrEnum):
    ORACLE_QUESTION = "oracle_question"
    DREAM_WEAVER = "dream_weaver"


class GpuRequestStatus(StrEnum):
    """``requested`` is written on the device; the hub sets every later status."""

    REQUESTED = "requested"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


class RoomType(StrEnum):
    LIVING_ROOM = "living_room"
    BEDROOM = "bedroom"
    KITCHEN = "kitchen"
    DINING_ROOM = "dining_room"
    BATHROOM = "bathroom"
    STUDY = "study"
    BALCONY = "balcony"
    KIDS_ROOM = "kids_room"


GPU_REQUEST_PHOTO_CHARS = 250_000
"""A room photo travels in its request as base64: at most about 187 KB (a downscaled JPEG)."""
GPU_REQUEST_ANSWER_CHARS = 100_000


class GpuRequest(Record):
    """A GPU job asked for on a device (offline too): it runs once it reaches the hub, and
    the hub writes its status, progress and result back into this record."""

    kind: GpuRequestKind
    question: str | None = Field(None, max_length=2000)
    """An Oracle question in plain language."""
    room_type: RoomType | None = None
    style: str | None = Field(None, max_length=300)
    photo: str | None = Field(None, max_length=GPU_REQUEST_PHOTO_CHARS)
    """The room photo (PNG or JPEG) as base64; the hub empties it once the job holds it."""
    requested_at: datetime | None = None
    status: GpuRequestStatus = GpuRequestStatus.REQUESTED
    progress: float = Field(0.0, ge=0, le=1)
    job_id: str | None = None
    answer: str | None = Field(None, max_length=GPU_REQUEST_ANSWER_CHARS)
    """An Oracle answer as JSON text: sql, columns, rows, visualization."""
    result_url: str | None = Field(None, max_length=300)
    """Where the hub serves a render's PNG (``/api/dream-weaver/result/{job_id}``)."""
    error: str | None = Field(None, max_length=500)
    finished_at: datetime | None = None

    @model_validator(mode="after")
    def _asks_something(self) -> GpuRequest:
        if self.kind is GpuRequestKind.ORACLE_QUESTION and not self.question:
            raise ValueError("an oracle_question request needs its question")
        if self.kind is GpuRequestKind.DREAM_WEAVER and not (self.room_type and self.style and (
                self.photo or self.status is not GpuRequestStatus.REQUESTED)):
            raise ValueError("a dream_weaver request needs room_type, style and photo")
        return self
