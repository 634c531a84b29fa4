"""Sentinel on a kiosk: perception sessions whose consent, live QD and results are records.

A session starts only after its consent record is written; the perception pipeline then runs in
a worker thread (MediaPipe blocks), publishing each frame's running QD to local websocket
listeners; completing it writes the QD score and the session's outcome as CRDT records that sync
to the hub. Revoking consent stops the live sessions it covers and purges their results.
Perception imports lazily: a broker's iPad never loads MediaPipe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator

from core.errors import Conflict, NotFound, VelocityError
from core.ids import new_id
from edge_agent.replica import Replica
from schema import collection
from schema.biometrics import RESULT_KEYS, purge_values
from schema.models import Record

if TYPE_CHECKING:
    from perception.consent import InMemoryConsentGate
    from perception.features import FaceFeatures
    from perception.frames import Frame, FrameSource
    from perception.scoring import Scorer
    from perception.session import Pipeline, SessionResult
    from perception.settings import SentinelSettings

Write = Callable[[str, str | None, dict[str, Any]], Awaitable[Record]]
LIVE_QUEUE = 64
"""Live messages buffered per listener; a slow listener loses the oldest, never the kiosk."""


class SceneSpan(BaseModel):
    """A stretch of the property video the visitor watches, e.g. 00:30–00:50 'sea-view deck'."""

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    label: str = Field(min_length=1, max_length=80)

    @model_validator(mode="after")
    def _ordered(self) -> SceneSpan:
        if self.end_s <= self.start_s:
            raise ValueError("a scene ends after it starts")
        return self


class SessionStart(BaseModel):
    consent_reference: str = Field(min_length=1, max_length=200, description=(
        "The visitor's consent (the signed form's id or the kiosk screen's acceptance id); "
        "nothing is analysed without it."))
    person_id: str | None = Field(None, max_length=64)
    lead_id: str | None = Field(None, max_length=64)
    asset_id: str | None = Field(None, max_length=64, description="The video being watched.")
    scene_map: list[SceneSpan] = Field(default_factory=list, max_length=200)
    recording: Path | None = Field(None, description=(
        "A recorded video on this kiosk analysed instead of the camera (demos, tests)."))


@dataclass(eq=False)
class _Session:
    session_id: str
    consent_id: str
    start: SessionStart
    stop: threading.Event = field(default_factory=threading.Event)
    listeners: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    last: dict[str, Any] | None = None
    task: asyncio.Task[SessionResult] | None = None
    outcome: dict[str, Any] | None = None

    def publish(self, message: dict[str, Any]) -> None:
        self.last = message
        for queue in self.listeners:
            if queue.full():
                with suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)


class _Stoppable:
    """A frame source that ends as soon as ``stop`` is set (the session is being completed)."""

    def __init__(self, source: FrameSource, stop: threading.Event) -> None:
        self._source, self._stop = source, stop

    def __iter__(self) -> Iterator[Frame]:
        for frame in self._source:
            if self._stop.is_set():
                return
            yield frame

    def close(self) -> None:
        self._source.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def annotate(signals: list[Any], scenes: list[SceneSpan]) -> list[str]:
    """Signal labels, each with the scene of the video it happened in when there is one."""
    labels = []
    for signal in signals:
        scene = next((s.label for s in scenes if s.start_s <= signal.at_s < s.end_s), None)
        labels.append(f"{signal.label} ({scene})" if scene else signal.label)
    return labels


class KioskSentinel:
    """Consent-first perception sessions on this device; an `async with` service."""

    def __init__(self, replica: Replica, write: Write, tenant_id: str, user_id: str,
                 settings: SentinelSettings, *, watch_interval_s: float = 1.0) -> None:
        self._replica = replica
        self._write = write
        self._tenant_id, self._user_id = tenant_id, user_id
        self._settings = settings
        self._watch_interval_s = watch_interval_s
        self._sessions: dict[str, _Session] = {}
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> KioskSentinel:
        from perception.consent import InMemoryConsentGate
        from perception.session import Pipeline

        # Loads MediaPipe and any configured model now: a bad setting fails at start.
        self._pipeline: Pipeline = await asyncio.to_thread(Pipeline.from_settings,
                                                           self._settings)
        self._gate: InMemoryConsentGate = InMemoryConsentGate()
        self._watcher = asyncio.create_task(self._watch_consents(), name="sentinel-consents")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with suppress(asyncio.CancelledError):
                await self._watcher
        for session in self._sessions.values():
            session.stop.set()
        for session in self._sessions.values():
            if session.task is not None:
                with suppress(BaseException):
                    await session.task

    # --- sessions ---------------------------------------------------------------------------

    async def start(self, start: SessionStart) -> dict[str, Any]:
        """Record consent, then start analysing; returns the session's ids."""
        source = self._source(start)  # a missing recording or camera fails before any record
        session = _Session(new_id(), new_id(), start)
        try:
            visibility = {"tenant_id": self._tenant_id, "owner_id": self._user_id,
                          "created_at": _now()}
            await self._write("consents", session.consent_id, {
                **visibility, "person_id": start.person_id, "lead_id": start.lead_id,
                "session_id": session.session_id, "method": "kiosk_tap",
                "granted_at": _now()})
            await self._write("perception_sessions", session.session_id, {
                **visibility, "person_id": start.person_id, "lead_id": start.lead_id,
                "consent_id": session.consent_id, "asset_id": start.asset_id,
                "started_at": _now()})
        except BaseException:
            source.close()
            raise
        self._gate.grant(session.session_id, start.consent_reference)
        self._sessions[session.session_id] = session
        session.task = asyncio.create_task(self._run(session, source),
                                           name=f"sentinel-{session.session_id}")
        return self.describe(session.session_id)

    def _source(self, start: SessionStart) -> FrameSource:
        from perception.frames import CameraSource, VideoFileSource

        s = self._settings
        if start.recording is not None:
            return VideoFileSource(start.recording, max_fps=s.fps)
        return CameraSource(s.camera_index, s.camera_width, s.camera_height, s.fps)

    async def _run(self, session: _Session, source: FrameSource) -> SessionResult:
        from perception.session import run_session

        loop = asyncio.get_running_loop()

        def on_frame(f: FaceFeatures, scorer: Scorer) -> None:
            message = {"type": "frame", "session_id": session.session_id, "t": round(f.t, 3),
                       "qd": scorer.current_qd(), "face": bool(f.present),
                       "attention": round(f.attention, 3), "smile": round(f.smile, 3)}
            loop.call_soon_threadsafe(session.publish, message)

        try:
            result = await asyncio.to_thread(
                run_session, session.session_id, _Stoppable(source, session.stop), self._gate,
                self._pipeline, on_frame=on_frame)
            self._gate.require(session.session_id)  # withdrawn while stopping: no result
        except VelocityError as exc:
            session.publish({"type": "stopped", "session_id": session.session_id,
                             "error": exc.code, "detail": exc.message})
            raise
        session.publish({"type": "ended", "session_id": session.session_id, "qd": result.qd,
                         "frames": result.frames_seen})
        return result

    def _get(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(f"no Sentinel session {session_id} on this kiosk")
        return session

    def describe(self, session_id: str) -> dict[str, Any]:
        session = self._get(session_id)
        state = ("completed" if session.outcome is not None else
                 "ended" if session.task is not None and session.task.done() else "live")
        return {"session_id": session_id, "consent_id": session.consent_id, "state": state,
                "person_id": session.start.person_id, "lead_id": session.start.lead_id,
                "live": session.last, "result": session.outcome}

    async def complete(self, session_id: str, *, at_end: bool = False) -> dict[str, Any]:
        """Stop analysing (or, ``at_end``, let a recording play out) and write the final QD;
        a session whose consent was withdrawn has nothing to write (`ConsentRequired`)."""
        session = self._get(session_id)
        if session.outcome is not None:
            return session.outcome
        assert session.task is not None
        if not at_end:
            session.stop.set()
        result = await asyncio.shield(session.task)
        signals = annotate(result.signals, session.start.scene_map)
        now = _now()
        score = await self._write("qd_scores", None, {
            "person_id": session.start.person_id, "lead_id": session.start.lead_id,
            "session_id": session_id, "score": result.qd, "source": "sentinel",
            "scored_at": now, "signals": signals})
        await self._write("perception_sessions", session_id, {
            "completed_at": now, "qd_final": result.qd, "frames_seen": result.frames_seen,
            "signals": signals})
        session.outcome = {"session_id": session_id, "qd_score_id": score.id, "qd": result.qd,
                           "engagement": result.engagement, "signals": signals,
                           "frames_seen": result.frames_seen,
                           "frames_with_face": result.frames_with_face,
                           "duration_s": result.duration_s, "scorer": result.scorer}
        session.publish({"type": "completed", **session.outcome})
        return session.outcome

    def listen(self, session_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A queue of the session's live messages (starting with the latest one)."""
        session = self._get(session_id)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(LIVE_QUEUE)
        if session.last is not None:
            queue.put_nowait(session.last)
        session.listeners.add(queue)
        return queue

    def unlisten(self, session_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.listeners.discard(queue)

    # --- consent ----------------------------------------------------------------------------

    async def revoke(self, *, person_id: str | None = None, session_id: str | None = None
                     ) -> dict[str, int]:
        """Revoke consent for a person (all their sessions) or one session, stop what is live
        and purge the results this kiosk holds; the changes sync like any other."""
        if (person_id is None) == (session_id is None):
            raise Conflict("name exactly one of person_id or session_id to revoke")
        q = self._replica.query
        consents = await q(
            "SELECT id, session_id FROM temp.intel_biometric_consent WHERE NOT deleted AND "
            "(person_id = ? OR session_id = ?)", (person_id, session_id))
        sessions = {c["session_id"] for c in consents} | ({session_id} if session_id else set())
        for consent in consents:
            await self._write("consents", consent["id"], {"revoked_at": _now()})
        for sid in sessions:
            self._gate.withdraw(sid)
            if sid in self._sessions:
                self._sessions[sid].stop.set()
        purged = 0
        for coll_name, key in RESULT_KEYS.items():
            table = collection(coll_name).table
            marks = ",".join("?" * len(sessions)) or "NULL"
            rows = await q(f"SELECT id FROM temp.{table} WHERE NOT deleted AND (person_id = ? "
                           f"OR {key} IN ({marks}))", (person_id, *sessions))
            for row in rows:
                await self._write(coll_name, row["id"], purge_values(coll_name))
                purged += 1
        return {"consents_revoked": len(consents), "results_purged": purged}

    async def _watch_consents(self) -> None:
        """Stop a live session as soon as its consent is revoked elsewhere and synced here."""
        while True:
            await asyncio.sleep(self._watch_interval_s)
            live = [s for s in self._sessions.values() if not s.stop.is_set()]
            for session in live:
                rows = await self._replica.query(
                    "SELECT revoked_at, deleted FROM temp.intel_biometric_consent WHERE id = ?",
                    (session.consent_id,))
                if rows and (rows[0]["revoked_at"] or rows[0]["deleted"]):
                    self._gate.withdraw(session.session_id)
                    session.stop.set()
