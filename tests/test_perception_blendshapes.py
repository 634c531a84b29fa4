"""The Tasks FaceLandmarker source: a clear error naming the setting for any bad bundle.

No wheel ships face_landmarker.task (nor its blendshapes model), so the working path cannot run
here: these tests build bundles from the models the mediapipe wheel does ship and check every
way a configured file can be wrong, and check that blendshape-driven features score through the
same session and scorer interface.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import mediapipe
import numpy as np
import pytest

from core.errors import ConfigError
from perception import samples
from perception.blendshapes import BLENDSHAPE_NAMES, BlendshapeLandmarker, probe_bundle
from perception.consent import InMemoryConsentGate
from perception.features import expression_from_blendshapes
from perception.frames import ArraySource, Frame
from perception.landmarks import Face, FaceMeshLandmarker
from perception.session import Pipeline, run_session
from perception.settings import SentinelSettings

SETTING = "VELOCITY_SENTINEL_FACE_LANDMARKER_TASK"
MODELS = Path(mediapipe.__file__).parent / "modules"


def bundle(path: Path, blendshapes: bytes | None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.write(MODELS / "face_detection" / "face_detection_short_range.tflite",
                "face_detector.tflite")
        z.write(MODELS / "face_landmark" / "face_landmark.tflite",
                "face_landmarks_detector.tflite")
        if blendshapes is not None:
            z.writestr("face_blendshapes.tflite", blendshapes)
    return path


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "face_landmarker.task"
    for attempt in (lambda: Pipeline.from_settings(SentinelSettings(
                        face_landmarker_task=missing)),
                    lambda: BlendshapeLandmarker(missing)):
        with pytest.raises(ConfigError, match=f"{SETTING}: no such file"):
            attempt()


def test_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "face_landmarker.task"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ConfigError, match=f"{SETTING}: .* is not a MediaPipe task bundle"):
        probe_bundle(path)


def test_bundle_without_blendshapes_model(tmp_path: Path) -> None:
    path = bundle(tmp_path / "face_landmarker.task", None)
    with pytest.raises(ConfigError, match=f"{SETTING}: .* lacks face_blendshapes.tflite"):
        Pipeline.from_settings(SentinelSettings(face_landmarker_task=path))


def test_corrupt_blendshapes_model(tmp_path: Path) -> None:
    path = bundle(tmp_path / "face_landmarker.task", b"not a flatbuffer")
    with pytest.raises(ConfigError, match=f"{SETTING}: MediaPipe cannot load"):
        probe_bundle(path)


def test_a_valid_but_wrong_model_fails_the_probe(tmp_path: Path) -> None:
    wrong = (MODELS / "iris_landmark" / "iris_landmark.tflite").read_bytes()
    path = bundle(tmp_path / "face_landmarker.task", wrong)
    with pytest.raises(ConfigError, match=f"{SETTING}: .*fails on a reference face"):
        probe_bundle(path)


def test_the_52_names_are_the_ones_the_mapping_reads() -> None:
    assert len(BLENDSHAPE_NAMES) == 52
    read = {"mouthSmileLeft", "mouthSmileRight", "browInnerUp", "browOuterUpLeft",
            "browOuterUpRight", "browDownLeft", "browDownRight", "eyeBlinkLeft",
            "eyeBlinkRight", "jawOpen", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
            "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeLookDownLeft",
            "eyeLookDownRight"}
    assert read <= set(BLENDSHAPE_NAMES)
    neutral = dict.fromkeys(BLENDSHAPE_NAMES, 0.0)
    assert expression_from_blendshapes(neutral)[:5] == (0.0, 0.0, 0.0, 1.0, 0.0)


class BlendshapeStandIn:
    """Stands in for the Tasks source (whose model is not available here): real face-mesh
    landmarks of the frame plus a blendshape dict scripted over time."""

    name = "face_landmarker_blendshapes"

    def __init__(self) -> None:
        self._mesh = FaceMeshLandmarker()

    def detect(self, frame: Frame) -> Face | None:
        face = self._mesh.detect(frame)
        if face is None:
            return None
        smiling = 2.0 <= frame.t < 3.0
        shapes = dict.fromkeys(BLENDSHAPE_NAMES, 0.02)
        shapes.update(mouthSmileLeft=0.9 if smiling else 0.05,
                      mouthSmileRight=0.85 if smiling else 0.05)
        return Face(face.points, face.width, face.height, shapes)

    def close(self) -> None:
        self._mesh.close()


def test_blendshape_features_score_through_the_same_interface() -> None:
    hopper = samples.face_crops("hopper")["face"]  # closed mouth: geometry says no smile
    frames = [samples.place(hopper, scale=0.8) for _ in range(50)]
    gate = InMemoryConsentGate()
    gate.grant("s", "form-7")
    stand_in = Pipeline(landmarker_factory=BlendshapeStandIn)
    mesh = Pipeline(landmarker_factory=FaceMeshLandmarker)
    blended = run_session("s", ArraySource(frames, fps=10), gate, stand_in)
    geometric = run_session("s", ArraySource(frames, fps=10), gate, mesh)
    assert blended.feature_source == "face_landmarker_blendshapes"
    assert geometric.feature_source == "face_mesh"
    assert blended.summary.smile > geometric.summary.smile
    peaks = [s for s in blended.signals if s.kind == "peak_interest"]
    assert [p.at for p in peaks] == ["00:02"] and peaks[0].label.startswith("smile")
    # head pose still comes from the landmarks; the eyes' direction from eyeLook* blendshapes
    assert np.isclose(blended.summary.mean_abs_yaw, geometric.summary.mean_abs_yaw)
    assert blended.summary.attention > 0.8 and geometric.summary.attention > 0.8
