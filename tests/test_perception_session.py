"""Sessions end to end on a video made from a real face: consent, signals, determinism, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from core.errors import PermissionDenied
from perception import samples
from perception.cli import app
from perception.consent import ConsentGate, ConsentRequired, InMemoryConsentGate
from perception.frames import ArraySource, ImageSequenceSource, SourceError, VideoFileSource
from perception.session import Pipeline, SessionResult, run_session
from perception.settings import SentinelSettings

FPS = 10.0


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return samples.scenario(FPS)


@pytest.fixture(scope="module")
def video(frames, tmp_path_factory) -> Path:
    """The scenario as a Motion-JPEG AVI: what a kiosk recording looks like to OpenCV."""
    path = tmp_path_factory.mktemp("video") / "visit.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    assert writer.isOpened()
    for image in frames:
        writer.write(np.ascontiguousarray(image[:, :, ::-1]))
    writer.release()
    return path


@pytest.fixture
def gate() -> InMemoryConsentGate:
    g = InMemoryConsentGate()
    g.grant("visit-1", "form-0042")
    return g


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline.from_settings(SentinelSettings())


class Watched:
    """A source that records whether anyone read from it."""

    def __init__(self, images) -> None:
        self.inner = ArraySource(images, FPS)
        self.read = 0
        self.closed = False

    def __iter__(self):
        for frame in self.inner:
            self.read += 1
            yield frame

    def close(self) -> None:
        self.closed = True


def test_no_consent_no_frame_read(frames, pipeline) -> None:
    gate = InMemoryConsentGate()
    assert isinstance(gate, ConsentGate)
    source = Watched(frames[:5])
    with pytest.raises(ConsentRequired) as err:
        run_session("visit-1", source, gate, pipeline)
    assert isinstance(err.value, PermissionDenied) and err.value.code == "consent_required"
    assert source.read == 0 and source.closed


def test_expired_or_out_of_scope_consent_is_refused(frames, pipeline) -> None:
    gate = InMemoryConsentGate()
    gate.grant("old", "form-1", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    gate.grant("other", "form-2", scopes=frozenset({"photos"}))
    for session in ("old", "other"):
        with pytest.raises(ConsentRequired):
            run_session(session, Watched(frames[:3]), gate, pipeline)
    with pytest.raises(ValueError):
        gate.grant("s", "  ")


def test_withdrawal_stops_the_session_at_the_next_frame(frames, gate, pipeline) -> None:
    source = Watched(frames[:40])
    seen = []

    def on_frame(features, scorer) -> None:
        seen.append(features.t)
        if len(seen) == 5:
            gate.withdraw("visit-1")

    with pytest.raises(ConsentRequired):
        run_session("visit-1", source, gate, pipeline, on_frame=on_frame)
    assert len(seen) == 5 and source.read == 6 and source.closed


def test_a_recorded_visit(video, gate, pipeline) -> None:
    rows = []
    result = run_session("visit-1", VideoFileSource(video), gate, pipeline,
                         on_frame=lambda f, s: rows.append(f))
    assert isinstance(result, SessionResult)
    assert result.frames_seen == 120
    assert 80 <= result.frames_with_face <= 90  # 3.5 s of the 12 s are empty
    assert result.duration_s == pytest.approx(11.9)
    assert result.consent_reference == "form-0042"
    assert result.feature_source == "face_mesh" and result.scorer == "rules-v1"
    assert 1 <= result.qd <= 100

    peaks = [s for s in result.signals if s.kind == "peak_interest"]
    best = max(peaks, key=lambda s: s.strength)
    assert 3.0 <= best.at_s < 5.0 and best.label == f"smile + lean-in at {best.at}"
    (gone,) = [s for s in result.signals if s.kind == "left_frame"]
    assert gone.at == "00:06" and gone.duration_s == pytest.approx(3.5, abs=0.15)

    def mean(attr: str, lo: float, hi: float) -> float:
        return float(np.mean([getattr(f, attr) for f in rows if lo <= f.t < hi and f.present]))

    assert mean("smile", 3.2, 5.0) > mean("smile", 0.2, 3.0) + 0.5  # smile vs relaxed
    assert mean("attention", 9.7, 12) < mean("attention", 0.2, 3.0) - 0.1  # turned away
    assert mean("head_yaw", 9.7, 12) > 8
    assert not any(f.present for f in rows if 6.1 <= f.t < 9.4)


def test_same_input_same_score(video, gate, pipeline) -> None:
    a = run_session("visit-1", VideoFileSource(video), gate, pipeline)
    b = run_session("visit-1", VideoFileSource(video), gate, pipeline)
    assert a == b
    assert a.model_dump_json() == b.model_dump_json()


def test_engaged_visit_outscores_a_distracted_one(gate, pipeline) -> None:
    crops = samples.face_crops("astronaut")
    engaged = [samples.place(crops["face"], scale=0.8, dx=10 * np.sin(i / 5)) for i in range(60)]
    distracted = [samples.place(crops["turned"], scale=0.8) if i % 2 else samples.blank()
                  for i in range(60)]
    a = run_session("visit-1", ArraySource(engaged, FPS), gate, pipeline)
    b = run_session("visit-1", ArraySource(distracted, FPS), gate, pipeline)
    assert a.qd > b.qd + 15
    empty = run_session("visit-1", ArraySource([samples.blank()] * 20, FPS), gate, pipeline)
    assert empty.qd == 1 and empty.frames_with_face == 0


def test_video_sampling_and_image_sequences(video, frames, tmp_path) -> None:
    sampled = VideoFileSource(video, max_fps=5)
    times = [f.t for f in sampled]
    assert len(times) == 60 and times[:3] == [0.0, 0.2, 0.4]
    folder = tmp_path / "seq"
    folder.mkdir()
    for i, image in enumerate(frames[:3]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), image[:, :, ::-1])
    got = list(ImageSequenceSource(folder, fps=2))
    assert [f.t for f in got] == [0.0, 0.5, 1.0]
    assert np.array_equal(got[1].image, frames[1])  # RGB in, RGB out
    with pytest.raises(SourceError):
        VideoFileSource(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"junk")
    with pytest.raises(SourceError):
        VideoFileSource(tmp_path / "junk.mp4")


runner = CliRunner()


def test_cli_score_prints_the_session_qd(video, gate, pipeline) -> None:
    expected = run_session("visit-1", VideoFileSource(video), gate, pipeline)
    out = runner.invoke(app, ["score", str(video), "--consent", "form-0042", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["qd"] == expected.qd
    assert [s["label"] for s in data["signals"]] == [s.label for s in expected.signals]
    text = runner.invoke(app, ["score", str(video), "--consent", "form-0042"])
    assert text.exit_code == 0 and f"QD {expected.qd}" in text.output
    assert "smile + lean-in" in text.output


def test_cli_refuses_without_consent(video) -> None:
    out = runner.invoke(app, ["score", str(video)])
    assert out.exit_code == 2
    assert "--consent" in out.output


def test_cli_run_on_a_video(video) -> None:
    out = runner.invoke(app, ["run", "--video", str(video), "--consent", "c-1",
                              "--frames", "15"])
    assert out.exit_code == 0, out.output
    assert "QD" in out.output and "frames 15" in out.output
    assert runner.invoke(app, ["run", "--consent", "c-1"]).exit_code == 2


def test_cli_errors_name_the_setting(video, tmp_path) -> None:
    out = runner.invoke(app, ["score", str(video), "--consent", "c", "--onnx-model",
                              str(tmp_path / "nope.onnx")])
    assert out.exit_code == 1 and "VELOCITY_SENTINEL_ONNX_MODEL" in out.output


def test_cli_help() -> None:
    for args in (["--help"], ["score", "--help"], ["run", "--help"]):
        out = runner.invoke(app, args)
        assert out.exit_code == 0 and "Usage" in out.output


def test_settings_come_from_the_environment_and_bad_values_name_the_variable(
        monkeypatch, tmp_path) -> None:
    from core.errors import ConfigError
    from perception.settings import load_sentinel_settings

    monkeypatch.setenv("VELOCITY_SENTINEL_FPS", "5")
    monkeypatch.setenv("VELOCITY_SENTINEL_ONNX_MODEL", str(tmp_path / "m.onnx"))
    settings = load_sentinel_settings()
    assert settings.fps == 5 and settings.onnx_model == tmp_path / "m.onnx"
    monkeypatch.setenv("VELOCITY_SENTINEL_FPS", "-1")
    with pytest.raises(ConfigError, match="VELOCITY_SENTINEL_FPS"):
        load_sentinel_settings()
