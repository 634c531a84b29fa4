"""Expression and attention features from face landmarks (or from Tasks blendshapes).

Everything is measured in the head's own frame: the landmarks are rotated so the eye line is the
x axis and the forehead→nose-base line the y axis (which removes roll, yaw and pitch from the
shape), moved so the point between the eyes is the origin, and divided by the inter-ocular
distance (IOD, between eye centres, in 3D). So a feature does not change when the visitor moves,
comes closer or tilts the head; only ``face_scale`` keeps the size on purpose (for lean-in).

The mapping from a raw measure to an intensity in [0, 1] is linear between a *neutral* and a
*full* value (`CALIBRATION`); see docs/perception.md for where the values come from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import astuple, dataclass

import numpy as np

from perception.landmarks import Face

FEATURE_NAMES = ("present", "smile", "brow_raise", "brow_furrow", "eye_openness", "jaw_open",
                 "head_yaw", "head_pitch", "gaze_on_screen", "attention", "face_scale")

# --- MediaPipe face-mesh indices (subject's right side = image left when not mirrored) ---------
R_EYE = (33, 133)  # outer, inner corner
L_EYE = (263, 362)
R_EAR = (33, 160, 158, 133, 153, 144)  # p1..p6 of Soukupová & Čech's eye aspect ratio
L_EAR = (263, 387, 385, 362, 380, 373)
R_IRIS, L_IRIS = 468, 473
MOUTH_R, MOUTH_L = 61, 291
LIP_UPPER, LIP_LOWER = 13, 14  # inner lip centres
BROWS = [105, 66, 107, 334, 296, 336]
BROW_INNER = (107, 336)
FOREHEAD, NOSE_BASE = 10, 2
# bilateral pairs (right, left): eye corners and face contour — rigid, so they give the x axis
PAIRS = np.array([(33, 263), (133, 362), (234, 454), (127, 356), (93, 323), (132, 361)])

# raw measure → intensity: (neutral, full)
CALIBRATION: dict[str, tuple[float, float]] = {
    "mouth_width": (0.88, 1.05),  # mouth corners apart / IOD
    "corner_lift": (0.0, 0.10),  # corners above the upper lip's inner centre / IOD
    "lip_gap": (0.10, 0.45),  # inner lips apart / IOD
    "brow_height": (0.34, 0.46),  # brows above the eye line / IOD
    "brow_gap": (0.45, 0.33),  # inner brow ends apart / IOD (AU4 pulls them together)
    "ear": (0.10, 0.28),  # eye aspect ratio: closed → open
}
EYE_RADIUS = 0.42  # eyeball radius / eye width (≈ 12 mm / 29 mm): iris shift → eye rotation
EYE_V_NEUTRAL = -0.055  # iris centre above the corner line (/ eye width) when looking ahead
EYE_PITCH_WEIGHT = 0.5  # vertical iris position is half-trusted (eyelids occlude the iris)


@dataclass(frozen=True, slots=True)
class ScreenGeometry:
    """Where the screen is, in degrees, as seen from the visitor relative to the camera axis."""

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    half_width_deg: float = 20.0
    half_height_deg: float = 15.0


@dataclass(frozen=True, slots=True)
class Geometry:
    """Raw measures of one face, in the head frame, lengths in IOD units, angles in degrees."""

    iod_px: float
    yaw: float  # + : the face turns toward the image's right
    pitch: float  # + : the face turns up
    roll: float
    mouth_width: float
    corner_lift: float
    lip_gap: float
    brow_height: float
    brow_gap: float
    ear: float
    eye_yaw: float  # eyes within the head, + toward the image's right
    eye_pitch: float  # + up


@dataclass(frozen=True, slots=True)
class FaceFeatures:
    """One frame's features; a frame without a face has ``present=False`` and zeros."""

    t: float
    present: bool
    smile: float = 0.0
    brow_raise: float = 0.0
    brow_furrow: float = 0.0
    eye_openness: float = 0.0
    jaw_open: float = 0.0
    head_yaw: float = 0.0
    head_pitch: float = 0.0
    gaze_on_screen: float = 0.0
    attention: float = 0.0
    face_scale: float = 0.0

    def vector(self) -> tuple[float, ...]:
        """The values in `FEATURE_NAMES` order (present as 0/1)."""
        return tuple(float(v) for v in astuple(self)[1:])


def _ramp(value: float, key: str) -> float:
    lo, hi = CALIBRATION[key]
    x = (value - lo) / (hi - lo)
    return 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x


# the measures read ~36 of the 478 points: select them once, then work on plain floats
_USED = sorted({*PAIRS.ravel().tolist(), *R_EAR, *L_EAR, R_IRIS, L_IRIS, MOUTH_R, MOUTH_L,
                LIP_UPPER, LIP_LOWER, *BROWS, FOREHEAD, NOSE_BASE})
_AT = {index: row for row, index in enumerate(_USED)}
_USED_ARRAY = np.array(_USED)
_MESH_ARRAY = _USED_ARRAY[_USED_ARRAY < R_IRIS]  # without iris: the same rows, minus the last
_PAIR_R = np.array([_AT[i] for i in PAIRS[:, 0]])
_PAIR_L = np.array([_AT[i] for i in PAIRS[:, 1]])

Vec = tuple[float, float, float]


def _unit(v: Vec) -> Vec:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n < 1e-9:
        raise ValueError("degenerate face geometry")
    return v[0] / n, v[1] / n, v[2] / n


def _dist(a: list[float], b: list[float]) -> float:
    return math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2)


def head_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation (rows: x, y, z axes of the head), origin (between the eyes) and IOD in pixels."""
    sel = points[_USED_ARRAY]
    return _frame(sel)


def _frame(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    sx, sy, sz = (sel[_PAIR_L] - sel[_PAIR_R]).sum(axis=0).tolist()
    x = _unit((sx, sy, sz))
    top, base = sel[_AT[FOREHEAD]].tolist(), sel[_AT[NOSE_BASE]].tolist()
    d = (base[0] - top[0], base[1] - top[1], base[2] - top[2])
    k = d[0] * x[0] + d[1] * x[1] + d[2] * x[2]
    y = _unit((d[0] - k * x[0], d[1] - k * x[1], d[2] - k * x[2]))
    z = (x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0])
    r0, r1, l0, l1 = (sel[_AT[i]] for i in (*R_EYE, *L_EYE))
    right, left = (r0 + r1) * 0.5, (l0 + l1) * 0.5
    iod = float(np.sqrt(((left - right) ** 2).sum()))
    if iod < 1e-6:
        raise ValueError("degenerate face geometry")
    return np.array([x, y, z]), (left + right) * 0.5, iod


def _ear(q: list[list[float]], idx: tuple[int, ...]) -> float:
    p1, p2, p3, p4, p5, p6 = (q[_AT[i]] for i in idx)
    return (_dist(p2, p6) + _dist(p3, p5)) / (2.0 * _dist(p1, p4) + 1e-9)


def _asin_deg(x: float) -> float:
    return math.degrees(math.asin(-1.0 if x < -1.0 else 1.0 if x > 1.0 else x))


def _eye_angles(q: list[list[float]], corners: tuple[int, int], iris: int) -> tuple[float, float]:
    a, b, c = q[_AT[corners[0]]], q[_AT[corners[1]]], q[_AT[iris]]
    width = _dist(a, b) + 1e-9
    u = (c[0] - (a[0] + b[0]) * 0.5) / width
    v = (c[1] - (a[1] + b[1]) * 0.5) / width
    return _asin_deg(u / EYE_RADIUS), -_asin_deg((v - EYE_V_NEUTRAL) / EYE_RADIUS)


def measure(face: Face) -> Geometry:
    """The raw geometry of one face (raises ValueError on degenerate landmarks)."""
    has_iris = face.points.shape[0] > L_IRIS
    sel = face.points[_USED_ARRAY if has_iris else _MESH_ARRAY]
    rot, origin, iod = _frame(sel)
    q = ((sel - origin) @ rot.T / iod).tolist()
    (xx, xy, _), _, (zx, zy, zz) = rot.tolist()
    if has_iris:
        r_yaw, r_pitch = _eye_angles(q, R_EYE, R_IRIS)
        l_yaw, l_pitch = _eye_angles(q, L_EYE, L_IRIS)
    else:  # the mesh without iris refinement: gaze is the head's direction alone
        r_yaw = r_pitch = l_yaw = l_pitch = 0.0
    mr, ml, up, lo = (q[_AT[i]] for i in (MOUTH_R, MOUTH_L, LIP_UPPER, LIP_LOWER))
    return Geometry(
        iod_px=iod,
        yaw=math.degrees(math.atan2(-zx, zz)),
        pitch=math.degrees(math.atan2(zy, zz)),
        roll=math.degrees(math.atan2(xy, xx)),
        mouth_width=_dist(mr, ml),
        corner_lift=up[1] - (mr[1] + ml[1]) * 0.5,
        lip_gap=lo[1] - up[1],
        brow_height=-sum(q[_AT[i]][1] for i in BROWS) / len(BROWS),
        brow_gap=_dist(q[_AT[BROW_INNER[0]]], q[_AT[BROW_INNER[1]]]),
        ear=(_ear(q, R_EAR) + _ear(q, L_EAR)) * 0.5,
        eye_yaw=(r_yaw + l_yaw) * 0.5,
        eye_pitch=(r_pitch + l_pitch) * 0.5,
    )


def _gauss(x: float, sigma: float) -> float:
    return math.exp(-0.5 * (x / sigma) ** 2)


def _expression_from_geometry(g: Geometry) -> tuple[float, float, float, float, float]:
    smile = 0.5 * _ramp(g.mouth_width, "mouth_width") + 0.5 * _ramp(g.corner_lift,
                                                                      "corner_lift")
    return (smile, _ramp(g.brow_height, "brow_height"), _ramp(g.brow_gap, "brow_gap"),
            _ramp(g.ear, "ear"), _ramp(g.lip_gap, "lip_gap"))


# eye rotation a full eyeLook* blendshape stands for (degrees)
BLENDSHAPE_EYE_YAW_DEG = 30.0
BLENDSHAPE_EYE_PITCH_DEG = 25.0


def expression_from_blendshapes(b: Mapping[str, float]) -> tuple[float, ...]:
    """(smile, brow_raise, brow_furrow, eye_openness, jaw_open, eye_yaw, eye_pitch).

    MediaPipe's blendshapes follow ARKit's names; left/right are the subject's own sides.
    """
    def g(name: str) -> float:
        value = float(b.get(name, 0.0))
        return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value

    smile = (g("mouthSmileLeft") + g("mouthSmileRight")) * 0.5
    raise_ = max(g("browInnerUp"), (g("browOuterUpLeft") + g("browOuterUpRight")) * 0.5)
    furrow = (g("browDownLeft") + g("browDownRight")) * 0.5
    openness = 1.0 - (g("eyeBlinkLeft") + g("eyeBlinkRight")) * 0.5
    # toward the subject's left (the image's right): left eye looks out, right eye looks in
    horizontal = ((g("eyeLookOutLeft") + g("eyeLookInRight"))
                  - (g("eyeLookInLeft") + g("eyeLookOutRight"))) * 0.5
    vertical = ((g("eyeLookUpLeft") + g("eyeLookUpRight"))
                - (g("eyeLookDownLeft") + g("eyeLookDownRight"))) * 0.5
    return (smile, raise_, furrow, openness, g("jawOpen"),
            horizontal * BLENDSHAPE_EYE_YAW_DEG, vertical * BLENDSHAPE_EYE_PITCH_DEG)


DEFAULT_SCREEN = ScreenGeometry()


def extract(face: Face | None, t: float, screen: ScreenGeometry = DEFAULT_SCREEN) -> FaceFeatures:
    """Features of one frame; ``face=None`` (or degenerate landmarks) gives an absent frame."""
    if face is None:
        return FaceFeatures(t, False)
    try:
        g = measure(face)
    except ValueError:
        return FaceFeatures(t, False)
    scale = g.iod_px / max(face.width, 1)
    if face.blendshapes is not None:
        return features_from_blendshapes(t, face.blendshapes, g.yaw, g.pitch, scale, screen)
    smile, brow_raise, furrow, openness, jaw = _expression_from_geometry(g)
    return _features(t, (smile, brow_raise, furrow, openness, jaw, g.eye_yaw, g.eye_pitch),
                     g.yaw, g.pitch, scale, screen)


def features_from_blendshapes(t: float, blendshapes: Mapping[str, float], head_yaw: float,
                              head_pitch: float, face_scale: float,
                              screen: ScreenGeometry = DEFAULT_SCREEN) -> FaceFeatures:
    """A present frame's features from blendshapes and head pose (degrees): the kiosk's Tasks
    source and a device that runs its own face tracking (an iPad's summaries) both come here."""
    return _features(t, expression_from_blendshapes(blendshapes), head_yaw, head_pitch,
                     face_scale, screen)


def _features(t: float, expression: tuple[float, ...], yaw: float, pitch: float, scale: float,
              screen: ScreenGeometry) -> FaceFeatures:
    smile, brow_raise, furrow, openness, jaw, eye_yaw, eye_pitch = expression
    gaze_yaw = yaw + eye_yaw
    gaze_pitch = pitch + EYE_PITCH_WEIGHT * eye_pitch
    on_screen = (_gauss(gaze_yaw - screen.yaw_deg, screen.half_width_deg)
                 * _gauss(gaze_pitch - screen.pitch_deg, screen.half_height_deg))
    eyes_open = min(1.0, openness / 0.5)
    return FaceFeatures(
        t=t, present=True, smile=smile, brow_raise=brow_raise, brow_furrow=furrow,
        eye_openness=openness, jaw_open=jaw, head_yaw=yaw, head_pitch=pitch,
        gaze_on_screen=on_screen, attention=on_screen * eyes_open, face_scale=scale)
