"""An iPad's per-second blendshape summaries score exactly as the kiosk scores the same seconds."""

from __future__ import annotations

import json
from typing import ClassVar

import httpx
import pytest
from pydantic import ValidationError

from core.errors import RecordInvalid
from ios_bridge.perception import ARKIT_BLENDSHAPES, BlendshapeSecond, score_seconds
from perception import samples
from perception.blendshapes import BLENDSHAPE_NAMES
from perception.consent import InMemoryConsentGate
from perception.features import measure
from perception.frames import ArraySource, Frame
from perception.landmarks import Face, FaceMeshLandmarker
from perception.session import Pipeline, run_session


def shapes_at(t: float) -> dict[str, float]:
    """A visitor who smiles at 3–5 s, raises the brows at 4 s and blinks now and then."""
    shapes = {"mouthSmileLeft": 0.05, "mouthSmileRight": 0.05, "eyeBlinkLeft": 0.1,
              "eyeBlinkRight": 0.12, "browInnerUp": 0.05, "jawOpen": 0.02}
    if 3.0 <= t < 5.0:
        shapes.update(mouthSmileLeft=0.9, mouthSmileRight=0.85)
    if t == 4.0:
        shapes.update(browInnerUp=0.8, jawOpen=0.6)
    if t == 10.0:
        shapes.update(eyeBlinkLeft=0.9, eyeBlinkRight=0.95, eyeLookOutLeft=0.7)
    return shapes


class KioskWithBlendshapes:
    """The kiosk's blendshape source (its model ships with no wheel): real face-mesh landmarks
    plus scripted blendshapes; it keeps what it returned so the iPad side gets the same."""

    name = "face_landmarker_blendshapes"
    seen: ClassVar[list[tuple[float, Face | None]]] = []

    def __init__(self) -> None:
        self._mesh = FaceMeshLandmarker()

    def detect(self, frame: Frame) -> Face | None:
        face = self._mesh.detect(frame)
        if face is not None:
            face = Face(face.points, face.width, face.height, shapes_at(frame.t))
        self.seen.append((frame.t, face))
        return face

    def close(self) -> None:
        self._mesh.close()


def ipad_seconds(seen: list[tuple[float, Face | None]]) -> list[str]:
    """What the iPad sends: one JSON message per second (head pose from its own tracking)."""
    out = []
    for t, face in seen:
        message = {"session_id": "s-ipad", "second": int(t), "frames": 1,
                   "face_frames": 0 if face is None else 1}
        if face is not None:
            g = measure(face)
            message |= {"blendshapes": dict(face.blendshapes or {}), "head_yaw_deg": g.yaw,
                        "head_pitch_deg": g.pitch, "face_scale": g.iod_px / face.width}
        out.append(json.dumps(message))
    return out


def test_ipad_summaries_score_as_the_kiosk_does() -> None:
    frames = samples.scenario(fps=1.0)  # a face, a smile and lean-in, out of view, turned
    gate = InMemoryConsentGate()
    gate.grant("s-kiosk", "form-1")
    KioskWithBlendshapes.seen = []
    kiosk = run_session("s-kiosk", ArraySource(frames, fps=1.0), gate,
                        Pipeline(landmarker_factory=KioskWithBlendshapes))
    seconds = [BlendshapeSecond.model_validate_json(m)
               for m in ipad_seconds(KioskWithBlendshapes.seen)]
    ipad = score_seconds(seconds)
    assert kiosk.frames_with_face < kiosk.frames_seen == len(seconds)  # absent seconds too
    assert ipad.qd == kiosk.qd
    assert ipad.summary == kiosk.summary
    assert ipad.signals == kiosk.signals
    assert any(s.kind == "peak_interest" for s in ipad.signals)
    assert any(s.kind in ("left_frame", "looked_away") for s in ipad.signals)


def test_the_arkit_names_are_mediapipes() -> None:
    assert BLENDSHAPE_NAMES[1:] == ARKIT_BLENDSHAPES


@pytest.mark.parametrize("bad", [
    {"frames": 0},
    {"face_frames": 31},
    {"blendshapes": {"smile": 0.5}},
    {"blendshapes": {"mouthSmileLeft": 1.5}},
    {"blendshapes": {"mouthSmileLeft": float("nan")}},
    {"head_yaw_deg": 400},
    {"face_scale": -1},
    {"second": -1},
    {"session_id": ""},
    {"extra": 1},
])
def test_bad_summaries_are_refused(bad: dict[str, object]) -> None:
    good = {"session_id": "s", "second": 0, "frames": 30, "face_frames": 30,
            "blendshapes": {"mouthSmileLeft": 0.4}}
    BlendshapeSecond.model_validate(good)
    with pytest.raises(ValidationError):
        BlendshapeSecond.model_validate({**good, **bad})


def test_out_of_order_mixed_or_empty_batches_are_refused() -> None:
    def second(n: int, session: str = "s") -> BlendshapeSecond:
        return BlendshapeSecond(session_id=session, second=n, frames=30, face_frames=30)

    with pytest.raises(RecordInvalid, match="in order"):
        score_seconds([second(1), second(1)])
    with pytest.raises(RecordInvalid, match="several sessions"):
        score_seconds([second(0), second(1, "t")])
    with pytest.raises(RecordInvalid, match="no seconds"):
        score_seconds([])
    assert 1 <= score_seconds([second(0), second(1)]).qd <= 100


@pytest.mark.anyio
async def test_the_hub_scores_an_ipads_summaries_like_the_kiosk() -> None:
    from core.identity import Principal, Role
    from tests.hubkit import login, running_hub

    seconds = [BlendshapeSecond(session_id="s-hub", second=n, frames=30,
                                face_frames=0 if 6 <= n < 9 else 30,
                                blendshapes=shapes_at(float(n)), head_yaw_deg=3.0 * n - 10,
                                head_pitch_deg=2.0, face_scale=0.2 + 0.01 * n)
               for n in range(12)]
    expected = score_seconds(seconds)
    body = {"session_id": "s-hub", "person_id": "p1",
            "seconds": [s.model_dump() for s in seconds]}
    async with running_hub() as server:
        director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
        await server.hub.writer.write(director, "people", "p1", {  # sessions name real clients
            "tenant_id": "t1", "full_name": "Walk-in visitor"}, create=True)
        broker = await login(server, "senior_broker@t1.test")
        async with httpx.AsyncClient(base_url=server.url, headers=broker) as http:
            r = await http.post("/api/sentinel/session/summaries", json=body)
            assert r.status_code == 403 and r.json()["error"] == "consent_required"
            r = await http.post("/api/sentinel/consent", json={"session_id": "s-hub",
                                                                "person_id": "p1",
                                                                "method": "ipad_tap"})
            assert r.status_code == 201, r.text
            bad = {**body, "seconds": [{**body["seconds"][0], "blendshapes": {"x": 1}}]}
            r = await http.post("/api/sentinel/session/summaries", json=bad)
            assert r.status_code == 422
            r = await http.post("/api/sentinel/session/summaries", json=body)
            assert r.status_code == 201, r.text
            assert r.json()["qd"] == expected.qd
        row = await server.hub.db.pool.fetchrow(
            "SELECT score, signals FROM intel_qd_scores WHERE session_id = 's-hub'")
        assert row["score"] == expected.qd
        assert list(row["signals"]) == sorted({s.label for s in expected.signals})  # a set
