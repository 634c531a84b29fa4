"""Features from real faces move the right way; position, size and roll do not move them."""

from __future__ import annotations

import numpy as np
import pytest

from perception import samples
from perception.features import (
    FEATURE_NAMES,
    FaceFeatures,
    expression_from_blendshapes,
    extract,
    measure,
)
from perception.frames import Frame
from perception.landmarks import Face, FaceMeshLandmarker


@pytest.fixture(scope="module")
def mesh():
    with FaceMeshLandmarker(static_images=True) as m:
        yield m


@pytest.fixture(scope="module")
def crops():
    return {name: samples.face_crops(name) for name in samples.PHOTOS}


def detect(mesh, image: np.ndarray) -> Face:
    face = mesh.detect(Frame(0, 0.0, np.ascontiguousarray(image)))
    assert face is not None, "no face found in a real face photo"
    return face


def features(mesh, image: np.ndarray) -> FaceFeatures:
    return extract(detect(mesh, image), 0.0)


def test_landmarks_on_real_photos(mesh) -> None:
    for name in samples.PHOTOS:
        face = detect(mesh, samples.photo(name))
        assert face.points.shape == (478, 3)
        h, w = samples.photo(name).shape[:2]
        assert (face.width, face.height) == (w, h)
        assert face.points[:, 0].min() > 0 and face.points[:, 0].max() < w


def test_smiling_face_scores_a_higher_smile_than_a_closed_mouth(mesh, crops) -> None:
    # two real people: Eileen Collins smiling broadly, Grace Hopper with a closed mouth
    smiling = features(mesh, crops["astronaut"]["face"])
    closed = features(mesh, crops["hopper"]["face"])
    assert smiling.smile > 0.6
    assert closed.smile < 0.3
    assert smiling.smile - closed.smile > 0.4


def test_drawing_the_mouth_corners_in_lowers_the_smile_of_the_same_face(mesh, crops) -> None:
    original = features(mesh, crops["astronaut"]["face"])
    relaxed = features(mesh, crops["astronaut"]["relaxed"])
    assert relaxed.smile < original.smile - 0.4
    g0 = measure(detect(mesh, crops["astronaut"]["face"]))
    g1 = measure(detect(mesh, crops["astronaut"]["relaxed"]))
    assert g1.mouth_width < g0.mouth_width and g1.corner_lift < g0.corner_lift


@pytest.mark.parametrize("name", samples.PHOTOS)
def test_raised_brows_raise_brow_height(mesh, crops, name) -> None:
    before = measure(detect(mesh, crops[name]["face"]))
    after = measure(detect(mesh, crops[name]["brows"]))
    assert after.brow_height > before.brow_height + 0.05
    assert features(mesh, crops[name]["brows"]).brow_raise > features(
        mesh, crops[name]["face"]).brow_raise


@pytest.mark.parametrize("name", samples.PHOTOS)
def test_lowered_lids_lower_eye_openness(mesh, crops, name) -> None:
    before = measure(detect(mesh, crops[name]["face"]))
    after = measure(detect(mesh, crops[name]["lids"]))
    assert after.ear < before.ear * 0.8  # eye aspect ratio (Soukupová & Čech 2016)
    assert features(mesh, crops[name]["lids"]).eye_openness < features(
        mesh, crops[name]["face"]).eye_openness - 0.2


@pytest.mark.parametrize("name", samples.PHOTOS)
def test_a_face_turned_away_scores_lower_attention(mesh, crops, name) -> None:
    frontal = features(mesh, crops[name]["face"])
    turned = features(mesh, crops[name]["turned"])  # +30° about the vertical axis
    assert abs(frontal.head_yaw) < 5
    assert turned.head_yaw > 8  # toward the image's right, as turned
    assert turned.attention < frontal.attention - 0.1
    assert turned.gaze_on_screen < frontal.gaze_on_screen


@pytest.mark.parametrize("name", samples.PHOTOS)
def test_mirroring_a_turned_face_mirrors_its_yaw(mesh, crops, name) -> None:
    turned = features(mesh, crops[name]["turned"])
    mirrored = features(mesh, crops[name]["turned"][:, ::-1])
    assert mirrored.head_yaw < -8
    assert abs(turned.head_yaw + mirrored.head_yaw) < 6


def test_features_ignore_position_size_and_roll(crops) -> None:
    """The same face drifting across a 640×480 frame, nearer and farther, tilting ±6°."""
    rows = []
    with FaceMeshLandmarker() as tracking:  # video mode, as in a session
        for i, image in enumerate(samples.drift(crops["astronaut"]["face"], 24)):
            face = tracking.detect(Frame(i, i / 10, image))
            assert face is not None
            rows.append(extract(face, i / 10))
    smile = np.array([f.smile for f in rows])
    yaw = np.array([f.head_yaw for f in rows])
    scale = np.array([f.face_scale for f in rows])
    assert scale.max() / scale.min() > 1.2  # the face did change size…
    assert smile.std() < 0.06 and smile.min() > 0.6  # …and the smile did not
    assert yaw.std() < 3.0
    assert min(f.attention for f in rows) > 0.8


def test_frames_without_a_face(mesh) -> None:
    rng = np.random.default_rng(7)
    for image in (samples.blank(), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
                  samples.blank(value=255)):
        assert mesh.detect(Frame(0, 0.0, image)) is None
    absent = extract(None, 1.5)
    assert not absent.present and absent.t == 1.5
    assert absent.vector() == (0.0,) * len(FEATURE_NAMES)


def test_degenerate_landmarks_count_as_no_face() -> None:
    face = Face(np.zeros((478, 3)), 640, 480)
    assert not extract(face, 0.0).present


def test_feature_vector_order() -> None:
    f = FaceFeatures(0.0, True, smile=0.5, face_scale=0.1)
    v = f.vector()
    assert len(v) == len(FEATURE_NAMES)
    assert v[FEATURE_NAMES.index("present")] == 1.0
    assert v[FEATURE_NAMES.index("smile")] == 0.5
    assert v[FEATURE_NAMES.index("face_scale")] == 0.1


def test_blendshape_mapping() -> None:
    smile, raise_, furrow, openness, jaw, eye_yaw, eye_pitch = expression_from_blendshapes({
        "mouthSmileLeft": 0.8, "mouthSmileRight": 0.6, "browInnerUp": 0.3,
        "browOuterUpLeft": 0.5, "browOuterUpRight": 0.7, "browDownLeft": 0.1,
        "browDownRight": 0.3, "eyeBlinkLeft": 0.2, "eyeBlinkRight": 0.4, "jawOpen": 0.25,
        "eyeLookOutLeft": 0.5, "eyeLookInRight": 0.5, "eyeLookUpLeft": 0.2,
        "eyeLookUpRight": 0.2})
    assert smile == pytest.approx(0.7)
    assert raise_ == pytest.approx(0.6)
    assert furrow == pytest.approx(0.2)
    assert openness == pytest.approx(0.7)
    assert jaw == pytest.approx(0.25)
    assert eye_yaw > 0  # both eyes toward the subject's left = the image's right
    assert eye_pitch > 0
    # out-of-range scores are clipped, missing ones count as 0
    assert expression_from_blendshapes({"mouthSmileLeft": 3.0})[0] == pytest.approx(0.5)


def test_blendshapes_replace_geometry_for_expressions_only(mesh, crops) -> None:
    face = detect(mesh, crops["hopper"]["face"])
    geometric = extract(face, 0.0)
    shapes = {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "eyeBlinkLeft": 0.0,
              "eyeBlinkRight": 0.0}
    blended = extract(Face(face.points, face.width, face.height, shapes), 0.0)
    assert blended.smile == pytest.approx(0.9) and geometric.smile < 0.3
    assert blended.head_yaw == geometric.head_yaw  # pose still from the landmarks
    assert blended.face_scale == geometric.face_scale


def test_fast_graph_feed_matches_mediapipe_process(crops) -> None:
    """The fast path (graph fed directly, landmarks read from their wire bytes) gives exactly
    the landmarks `FaceMesh.process()` gives."""
    with FaceMeshLandmarker(fast=True) as fast, FaceMeshLandmarker(fast=False) as standard:
        assert fast._feed is not None  # mediapipe 0.10.21's internals are where we expect
        for i, image in enumerate(samples.drift(crops["hopper"]["face"], 8)):
            a = fast.detect(Frame(i, i / 10, image))
            b = standard.detect(Frame(i, i / 10, image))
            assert a is not None and b is not None
            assert np.array_equal(a.points, b.points)
        assert fast.detect(Frame(9, 0.9, samples.blank())) is None


def test_without_iris_the_mesh_has_468_points_and_gaze_follows_the_head(mesh, crops) -> None:
    """`VELOCITY_SENTINEL_IRIS=false` trades eye-in-head gaze for a faster landmarker: the
    same face gives the same head pose and expressions, and turning away still costs
    attention."""
    with FaceMeshLandmarker(static_images=True, iris=False) as plain:
        face = detect(plain, crops["astronaut"]["face"])
        assert face.points.shape == (468, 3)
        without = extract(face, 0.0)
        turned = extract(detect(plain, crops["astronaut"]["turned"]), 0.0)
    with_iris = features(mesh, crops["astronaut"]["face"])
    assert abs(without.head_yaw - with_iris.head_yaw) < 3.0
    assert abs(without.smile - with_iris.smile) < 0.1
    assert turned.attention < without.attention
