"""MediaPipe Tasks FaceLandmarker as the feature source: landmarks plus 52 blendshapes.

Used when the operator sets ``VELOCITY_SENTINEL_FACE_LANDMARKER_TASK`` to a
``face_landmarker.task`` bundle. No wheel ships that bundle (its blendshapes model in
particular), so it is never fetched: a missing or invalid file is a `ConfigError` naming the
setting. `probe_bundle` goes further at start-up: the bundle must find the reference face
(scikit-image's astronaut photo) and give MediaPipe's 52 named blendshapes for it.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from core.errors import ConfigError
from perception.frames import Frame
from perception.landmarks import N_POINTS, Face, normalized_to_pixels
from perception.quiet import filter_native_logs
from perception.settings import ENV_PREFIX

SETTING = f"{ENV_PREFIX}FACE_LANDMARKER_TASK"
BUNDLE_MODELS = ("face_detector.tflite", "face_landmarks_detector.tflite",
                 "face_blendshapes.tflite")
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight")


def check_bundle(path: Path) -> None:
    """Raise `ConfigError` unless ``path`` is a zip holding the three face-landmarker models."""
    if not path.is_file():
        raise ConfigError(f"{SETTING}: no such file {path} (a face_landmarker.task bundle is "
                          "needed for blendshapes; unset the setting to use the face mesh)")
    try:
        with zipfile.ZipFile(path) as bundle:
            names = set(bundle.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConfigError(f"{SETTING}: {path} is not a MediaPipe task bundle "
                          f"(not a zip archive: {exc})") from exc
    missing = [name for name in BUNDLE_MODELS if name not in names]
    if missing:
        raise ConfigError(f"{SETTING}: {path} lacks {', '.join(missing)}; a "
                          "face_landmarker.task with blendshapes is needed")


def _reason(exc: BaseException) -> str:
    """The informative tail of a MediaPipe error (its head is a long graph node name)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 240 else "…" + text[-240:]


def _close(landmarker: Any) -> None:
    # a graph that failed re-raises its error on close
    with contextlib.suppress(RuntimeError, ValueError):
        landmarker.close()


def _options(path: Path, video: bool, detection: float, tracking: float) -> Any:
    from mediapipe.tasks.python import BaseOptions, vision

    return vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=1, min_face_detection_confidence=detection,
        min_tracking_confidence=tracking, output_face_blendshapes=True)


def _create(options: Any, path: Path) -> Any:
    from mediapipe.tasks.python import vision

    filter_native_logs()
    try:
        return vision.FaceLandmarker.create_from_options(options)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"{SETTING}: MediaPipe cannot load {path}: {_reason(exc)}") from exc


def probe_bundle(path: Path) -> None:
    """Load the bundle and run it once on a real face; `ConfigError` unless it gives the 52
    blendshapes. Called at start-up so a wrong model fails before any session."""
    import mediapipe as mp

    from perception.samples import photo

    path = Path(path)
    check_bundle(path)
    landmarker = _create(_options(path, False, 0.5, 0.5), path)
    try:
        image = mp.Image(image_format=mp.ImageFormat.SRGB,
                         data=np.ascontiguousarray(photo("astronaut")))
        try:
            result = landmarker.detect(image)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"{SETTING}: {path} fails on a reference face: "
                              f"{_reason(exc)}") from exc
    finally:
        _close(landmarker)
    if not result.face_landmarks or len(result.face_landmarks[0]) < N_POINTS:
        raise ConfigError(f"{SETTING}: {path} finds no {N_POINTS}-point face in the reference "
                          "photo")
    names = tuple(c.category_name for c in (result.face_blendshapes or [[]])[0])
    if names != BLENDSHAPE_NAMES:
        raise ConfigError(f"{SETTING}: {path} does not give MediaPipe's 52 blendshapes "
                          f"(got {len(names)} categories)")


class BlendshapeLandmarker:
    """FaceLandmarker (Tasks API, video mode, one face) returning landmarks and blendshapes."""

    name = "face_landmarker_blendshapes"

    def __init__(self, task_path: Path, *, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        task_path = Path(task_path)
        check_bundle(task_path)
        self._landmarker = _create(_options(task_path, True, min_detection_confidence,
                                            min_tracking_confidence), task_path)
        self._last_ms = -1

    def detect(self, frame: Frame) -> Face | None:
        import mediapipe as mp

        image = frame.image
        height, width = image.shape[:2]
        ms = max(int(frame.t * 1000), self._last_ms + 1)  # strictly increasing
        self._last_ms = ms
        result = self._landmarker.detect_for_video(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=image), ms)
        if not result.face_landmarks or len(result.face_landmarks[0]) < N_POINTS:
            return None
        landmarks = result.face_landmarks[0]
        xyz = np.array([(p.x, p.y, p.z) for p in landmarks[:N_POINTS]], dtype=np.float64)
        shapes = None
        if result.face_blendshapes:
            shapes = {c.category_name: float(c.score) for c in result.face_blendshapes[0]}
        return Face(normalized_to_pixels(xyz, width, height), width, height, shapes)

    def close(self) -> None:
        _close(self._landmarker)

    def __enter__(self) -> BlendshapeLandmarker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
