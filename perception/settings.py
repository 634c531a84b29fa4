"""Sentinel's settings, from ``VELOCITY_SENTINEL_…`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import load_settings

ENV_PREFIX = "VELOCITY_SENTINEL_"


class SentinelSettings(BaseSettings):
    """How a kiosk perceives: feature source, scorer, sampling and the screen's geometry."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    face_landmarker_task: Path | None = Field(
        None, description="A MediaPipe Tasks face_landmarker.task bundle (with its blendshapes "
        "model). When set, expression features come from its 52 blendshapes instead of the "
        "face-mesh geometry.")
    onnx_model: Path | None = Field(
        None, description="A tenant's learned scorer: ONNX model mapping the session feature "
        "vector to QD. When unset, the documented rule-based formula scores.")
    iris: bool = Field(
        True, description="Refine the eyes with MediaPipe's iris model (478 points), so gaze "
        "adds where the eyes look to where the head points. Off: 468 points, gaze from the "
        "head alone, about a quarter less time per frame.")
    fps: float = Field(15.0, gt=0, le=120, description="Frames analysed per second; video "
                       "frames in between are skipped.")
    camera_index: int = Field(0, ge=0, description="The kiosk camera's device index.")
    camera_width: int = Field(640, gt=0)
    camera_height: int = Field(480, gt=0)
    min_detection_confidence: float = Field(0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(0.5, ge=0, le=1)
    # Where the screen is as seen from the visitor, relative to the camera's axis (degrees):
    # a camera mounted above the screen sees people looking at the screen pitch down.
    screen_yaw_deg: float = Field(0.0, ge=-60, le=60)
    screen_pitch_deg: float = Field(0.0, ge=-60, le=60)
    screen_half_width_deg: float = Field(20.0, gt=0, le=60)
    screen_half_height_deg: float = Field(15.0, gt=0, le=60)
    dwell_saturation_s: float = Field(60.0, gt=0, description="Dwell time constant: a face "
                                      "present this long gets 63% of the dwell credit.")
    max_peaks: int = Field(5, ge=0, le=50)
    peak_min_gap_s: float = Field(5.0, ge=0)
    lapse_min_s: float = Field(3.0, gt=0, description="Shortest look-away or absence "
                               "reported as a signal.")


def load_sentinel_settings(**overrides: object) -> SentinelSettings:
    """Settings from the environment plus overrides; a bad value raises `ConfigError`."""
    return load_settings(SentinelSettings, **overrides)
