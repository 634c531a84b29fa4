"""One session: consent check → frames → landmarks → features → scorer → `SessionResult`.

Frames are handled one at a time in memory and dropped as soon as their landmarks are taken;
nothing here writes a file or opens a socket. Each session gets a fresh landmarker (tracking
state never leaks from one visitor to the next, and the same input always gives the same QD).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from perception.consent import SCOPE_QD, ConsentGate
from perception.features import FaceFeatures, ScreenGeometry, extract
from perception.frames import FrameSource
from perception.landmarks import FaceMeshLandmarker, Landmarker
from perception.onnx_scorer import OnnxQDModel, OnnxScorer
from perception.scoring import FeatureSummary, RuleScorer, Scorer, ScoringConfig, Signal
from perception.settings import SentinelSettings


class SessionResult(BaseModel):
    session_id: str
    qd: int = Field(ge=1, le=100)
    engagement: float = Field(ge=0, le=1)
    scorer: str
    feature_source: str
    signals: list[Signal]
    summary: FeatureSummary
    frames_seen: int = Field(ge=0)
    frames_with_face: int = Field(ge=0)
    duration_s: float = Field(ge=0)
    consent_reference: str


@dataclass
class Pipeline:
    """What a kiosk needs to score sessions: how to make a landmarker, the screen, the scorer."""

    landmarker_factory: Callable[[], Landmarker]
    screen: ScreenGeometry = field(default_factory=ScreenGeometry)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    onnx_model: OnnxQDModel | None = None

    @classmethod
    def from_settings(cls, settings: SentinelSettings) -> Pipeline:
        """Build and validate everything now: a bad model file fails here, not mid-session."""
        task = settings.face_landmarker_task
        factory: Callable[[], Landmarker]
        if task is not None:
            from perception.blendshapes import BlendshapeLandmarker, probe_bundle

            probe_bundle(task)  # a missing, invalid or wrong bundle raises ConfigError now

            def factory() -> Landmarker:
                return BlendshapeLandmarker(
                    task, min_detection_confidence=settings.min_detection_confidence,
                    min_tracking_confidence=settings.min_tracking_confidence)
        else:
            def factory() -> Landmarker:
                return FaceMeshLandmarker(
                    min_detection_confidence=settings.min_detection_confidence,
                    min_tracking_confidence=settings.min_tracking_confidence,
                    iris=settings.iris)

        model = OnnxQDModel(settings.onnx_model) if settings.onnx_model is not None else None
        return cls(
            landmarker_factory=factory,
            screen=ScreenGeometry(settings.screen_yaw_deg, settings.screen_pitch_deg,
                                  settings.screen_half_width_deg,
                                  settings.screen_half_height_deg),
            scoring=ScoringConfig(settings.dwell_saturation_s, settings.max_peaks,
                                  settings.peak_min_gap_s, settings.lapse_min_s),
            onnx_model=model)

    def new_scorer(self) -> Scorer:
        if self.onnx_model is not None:
            return OnnxScorer(self.onnx_model, self.scoring)
        return RuleScorer(self.scoring)


FrameCallback = Callable[[FaceFeatures, Scorer], None]


def run_session(session_id: str, source: FrameSource, consent: ConsentGate,
                pipeline: Pipeline, *, on_frame: FrameCallback | None = None,
                max_frames: int | None = None) -> SessionResult:
    """Score one session from ``source``; refuses (`ConsentRequired`) without active consent.

    Consent is checked before the first frame is read and again before each frame, so a
    withdrawal stops the session at once; a withdrawn session returns nothing. The session
    consumes ``source``: it is closed however the session ends.
    """
    scorer = pipeline.new_scorer()
    seen = with_face = 0
    first_t: float | None = None
    last_t = 0.0
    with closing(source):
        record = consent.require(session_id, SCOPE_QD)
        landmarker = pipeline.landmarker_factory()
        with closing(landmarker):
            for frame in source:
                consent.require(session_id, SCOPE_QD)
                face = landmarker.detect(frame)
                features = extract(face, frame.t, pipeline.screen)
                del frame, face  # the image is not kept past this point
                scorer.update(features)
                seen += 1
                with_face += features.present
                first_t = features.t if first_t is None else first_t
                last_t = features.t
                if on_frame is not None:
                    on_frame(features, scorer)
                if max_frames is not None and seen >= max_frames:
                    break
    score = scorer.result()
    return SessionResult(
        session_id=session_id, qd=score.qd, engagement=score.engagement, scorer=score.scorer,
        feature_source=landmarker.name, signals=score.signals, summary=score.summary,
        frames_seen=seen, frames_with_face=with_face,
        duration_s=max(0.0, last_t - (first_t or 0.0)), consent_reference=record.reference)
