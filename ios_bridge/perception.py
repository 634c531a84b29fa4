"""Perception from an iPad: one summary message per second of face tracking, scored like a kiosk.

The native app runs ARKit or MediaPipe itself and sends, for each second of a consented
session, the mean of each blendshape over the frames that had a face, the mean head pose and
face size, and how many frames it analysed. `score_seconds` turns each second into one frame of
the kiosk's features (through the same mapping the kiosk's blendshape source uses) and folds
them through the kiosk's scorer, so the same inputs give the same QD on either device.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import ConfigError, RecordInvalid

if TYPE_CHECKING:
    from perception.scoring import Score

ARKIT_BLENDSHAPES = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight")
"""ARKit's 51 face blendshape names (MediaPipe's 52 without ``_neutral``); left/right are the
subject's own sides."""

MAX_SESSION_SECONDS = 4 * 3600
MAX_FRAMES_PER_SECOND = 240


class BlendshapeSecond(BaseModel):
    """One second of a consented session's face tracking on the device (frames stay there)."""

    model_config = ConfigDict(extra="forbid", title="BlendshapeSecond", allow_inf_nan=False)

    session_id: str = Field(min_length=1, max_length=64)
    second: int = Field(ge=0, le=MAX_SESSION_SECONDS,
                        description="Whole seconds since the session started.")
    frames: int = Field(ge=1, le=MAX_FRAMES_PER_SECOND,
                        description="Frames analysed in this second.")
    face_frames: int = Field(ge=0, le=MAX_FRAMES_PER_SECOND,
                             description="Of those, frames in which a face was tracked.")
    blendshapes: dict[str, float] = Field(
        default_factory=dict, max_length=len(ARKIT_BLENDSHAPES),
        description="Mean of each blendshape (0..1) over the face frames; ARKit names; a "
                    "missing name counts as 0.")
    head_yaw_deg: float = Field(0.0, ge=-90, le=90,
                                description="Mean head yaw, + toward the image's right.")
    head_pitch_deg: float = Field(0.0, ge=-90, le=90, description="Mean head pitch, + up.")
    face_scale: float = Field(0.0, ge=0, le=1,
                              description="Mean inter-ocular distance / image width.")

    @model_validator(mode="after")
    def _consistent(self) -> BlendshapeSecond:
        if self.face_frames > self.frames:
            raise ValueError("face_frames cannot exceed frames")
        unknown = sorted(set(self.blendshapes) - set(ARKIT_BLENDSHAPES))
        if unknown:
            raise ValueError(f"unknown blendshape name(s) {unknown}; use ARKit's names")
        bad = sorted(k for k, v in self.blendshapes.items() if not 0.0 <= v <= 1.0)
        if bad:
            raise ValueError(f"blendshape value(s) outside 0..1: {bad}")
        return self

    @property
    def present(self) -> bool:
        """A face in most of the second's frames (as a kiosk frame has a face or not)."""
        return 2 * self.face_frames > self.frames


def score_seconds(seconds: Iterable[BlendshapeSecond]) -> Score:
    """Fold a session's seconds through the kiosk's rule scorer (one feature frame a second).

    Seconds must belong to one session and come in increasing order (a repeated or earlier
    second is bad input, not reordered silently)."""
    try:
        from perception.features import FaceFeatures, features_from_blendshapes
        from perception.scoring import RuleScorer
    except ImportError as exc:
        raise ConfigError(f"scoring needs the perception packages ({exc}); install the "
                          "`kiosk` extra: pip install 'velocity-edge[kiosk]'") from exc

    scorer = RuleScorer()
    session: str | None = None
    last = -1
    for s in seconds:
        if session is not None and s.session_id != session:
            raise RecordInvalid("summaries of several sessions in one batch")
        if s.second <= last:
            raise RecordInvalid(f"second {s.second} after {last}: send seconds in order")
        session, last = s.session_id, s.second
        t = float(s.second)
        scorer.update(features_from_blendshapes(t, s.blendshapes, s.head_yaw_deg,
                                                s.head_pitch_deg, s.face_scale)
                      if s.present else FaceFeatures(t, False))
    if session is None:
        raise RecordInvalid("no seconds to score")
    return scorer.result()
