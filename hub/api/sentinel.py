"""Sentinel's hub API: consent, completed sessions, a lead's QD, tagging a visitor to a lead.

Kiosks normally write these records offline and sync them; these routes serve the WebOS and
online-only integrations, and write through `LocalWriter`, so every change is a CRDT update
that reaches the kiosks and iPads too.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from core.errors import Conflict, NotFound, PermissionDenied, RecordInvalid
from core.identity import Principal
from hub import sentinel
from hub.api.crm import create_record
from hub.api.deps import HubDep, PrincipalDep
from hub.service import Hub
from hub.storage import projection as proj
from ios_bridge.perception import MAX_SESSION_SECONDS, BlendshapeSecond, score_seconds

router = APIRouter(prefix="/api/sentinel", tags=["sentinel"])
Id = Field(min_length=1, max_length=64)


class ConsentIn(BaseModel):
    session_id: str = Id
    person_id: str | None = Field(None, max_length=64)
    lead_id: str | None = Field(None, max_length=64)
    method: str = Field("webos", min_length=1, max_length=40)


class RevokeIn(BaseModel):
    person_id: str | None = Field(None, max_length=64)
    session_id: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> RevokeIn:
        if (self.person_id is None) == (self.session_id is None):
            raise ValueError("name exactly one of person_id or session_id")
        return self


class SessionCompleteIn(BaseModel):
    session_id: str = Id
    qd: int = Field(ge=1, le=100)
    signals: list[str] = Field(default_factory=list, max_length=50)
    frames_seen: int = Field(0, ge=0)
    person_id: str | None = Field(None, max_length=64)
    lead_id: str | None = Field(None, max_length=64)
    asset_id: str | None = Field(None, max_length=64)


class TagIn(BaseModel):
    session_id: str = Id
    lead_id: str = Id


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _readable(hub: Hub, principal: Principal, person_id: str | None,
                    lead_id: str | None) -> None:
    """A session names only a client and a lead the caller may read, in their tenant."""
    for coll_name, record_id in (("people", person_id), ("leads", lead_id)):
        if record_id is not None:
            await hub.storage.projection.one(principal, coll_name, record_id)


@router.post("/consent", status_code=201)
async def grant_consent(body: ConsentIn, principal: PrincipalDep, hub: HubDep
                        ) -> dict[str, Any]:
    """Record a visitor's consent for a session; scoring is refused until this exists."""
    await _readable(hub, principal, body.person_id, body.lead_id)
    if await sentinel.active_consent(hub, principal.tenant_id, body.session_id):
        raise Conflict(f"session {body.session_id} already has an active consent")
    return await create_record(hub, principal, "consents", {
        "session_id": body.session_id, "person_id": body.person_id, "lead_id": body.lead_id,
        "method": body.method, "granted_at": _now()})


@router.post("/consent/revoke")
async def revoke_consent(body: RevokeIn, principal: PrincipalDep, hub: HubDep
                         ) -> dict[str, int]:
    """Revoke a person's (or a session's) consent and purge their perception results from
    every replica."""
    return await sentinel.revoke(hub, principal, person_id=body.person_id,
                                 session_id=body.session_id)


@router.post("/session/complete", status_code=201)
async def complete_session(body: SessionCompleteIn, principal: PrincipalDep, hub: HubDep
                           ) -> dict[str, Any]:
    """Store a completed session's QD and signals; refused without active consent."""
    consent = await sentinel.active_consent(hub, principal.tenant_id, body.session_id)
    if consent is None:
        raise PermissionDenied(f"session {body.session_id} has no active consent: record it "
                               "with POST /api/sentinel/consent first", code="consent_required")
    await _readable(hub, principal, body.person_id, body.lead_id)
    person_id = body.person_id or consent["person_id"]
    lead_id = body.lead_id or consent["lead_id"]
    outcome = {"completed_at": _now(), "qd_final": body.qd, "frames_seen": body.frames_seen,
               "signals": body.signals}
    exists = await hub.storage.sentinel.session_exists(principal.tenant_id, body.session_id)
    if exists:
        await hub.writer.write(principal, "perception_sessions", body.session_id, outcome,
                               create=False)
    else:
        await create_record(hub, principal, "perception_sessions", {
            "person_id": person_id, "lead_id": lead_id, "consent_id": consent["id"],
            "asset_id": body.asset_id, "started_at": _now(), **outcome},
            record_id=body.session_id)
    score = await create_record(hub, principal, "qd_scores", {
        "person_id": person_id, "lead_id": lead_id, "session_id": body.session_id,
        "score": body.qd, "source": "sentinel", "scored_at": _now(), "signals": body.signals})
    if await sentinel.follow_scores(hub, principal.tenant_id, [score["id"]]):
        score = await hub.storage.projection.one(principal, "qd_scores", score["id"])
    return score


class SummariesIn(BaseModel):
    session_id: str = Id
    seconds: list[BlendshapeSecond] = Field(min_length=1, max_length=MAX_SESSION_SECONDS + 1)
    person_id: str | None = Field(None, max_length=64)
    lead_id: str | None = Field(None, max_length=64)
    asset_id: str | None = Field(None, max_length=64)


@router.post("/session/summaries", status_code=201)
async def score_summaries(body: SummariesIn, principal: PrincipalDep, hub: HubDep
                          ) -> dict[str, Any]:
    """Score an iPad's per-second blendshape summaries with the kiosk's scorer, then store the
    QD as a completed session; refused without active consent."""
    if any(s.session_id != body.session_id for s in body.seconds):
        raise RecordInvalid("every second must carry the session's session_id")
    score = await asyncio.to_thread(score_seconds, body.seconds)
    stored = await complete_session(SessionCompleteIn(
        session_id=body.session_id, qd=score.qd,
        signals=[s.label for s in score.signals][:50],
        frames_seen=sum(s.frames for s in body.seconds), person_id=body.person_id,
        lead_id=body.lead_id, asset_id=body.asset_id), principal, hub)
    return {**stored, "qd": score.qd, "engagement": score.engagement}


@router.get("/qd-score/{lead_id}")
async def qd_score(lead_id: str, principal: PrincipalDep, hub: HubDep) -> dict[str, Any]:
    """A lead's latest QD and its history (its own scores and its person's untagged ones)."""
    lead = await hub.storage.projection.one(principal, "leads", lead_id)
    history = await hub.storage.projection.rows(
        principal, "qd_scores", proj.qd_history(lead_id, lead["person_id"]),
        proj.BY_SCORED_NEWEST, 200, columns=proj.QD_COLUMNS)
    return {"lead_id": lead_id, "person_id": lead["person_id"],
            "latest": history[0] if history else None, "history": history}


@router.post("/tag-lead")
async def tag_lead(body: TagIn, principal: PrincipalDep, hub: HubDep) -> dict[str, Any]:
    """Attach a walk-in visitor's session (consent and scores) to a lead and its person."""
    lead = await hub.storage.projection.one(principal, "leads", body.lead_id)
    tag = {"lead_id": body.lead_id, "person_id": lead["person_id"]}
    writes: list[tuple[str, str, dict[str, Any]]] = []
    for coll_name, key in (("perception_sessions", "id"), ("consents", "session_id"),
                           ("qd_scores", "session_id")):
        rows = await hub.storage.projection.rows(principal, coll_name,
                                                 proj.eq(key, body.session_id),
                                                 columns=proj.columns("id"))
        writes += [(coll_name, r["id"], tag) for r in rows]
    if not any(c == "perception_sessions" for c, _, _ in writes):
        raise NotFound(f"no perception session {body.session_id}")
    await hub.writer.write_many(principal, writes, create=False)
    await sentinel.follow_scores(hub, principal.tenant_id,
                                 [rid for coll_name, rid, _ in writes if coll_name == "qd_scores"])
    return {"session_id": body.session_id, **tag, "records_tagged": len(writes)}
