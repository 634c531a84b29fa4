"""The rule-based QD scorer: bounds, direction, determinism, signals and their timestamps."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perception.features import FaceFeatures
from perception.scoring import (
    SUMMARY_NAMES,
    WEIGHTS,
    RuleScorer,
    ScoringConfig,
    mmss,
    qd_from_engagement,
    rule_engagement,
)


def frame(t: float, *, present: bool = True, attention: float = 0.9, smile: float = 0.1,
          brow_raise: float = 0.0, jaw_open: float = 0.1, eye_openness: float = 1.0,
          brow_furrow: float = 0.0, scale: float = 0.12, yaw: float = 0.0) -> FaceFeatures:
    if not present:
        return FaceFeatures(t, False)
    return FaceFeatures(t, True, smile=smile, brow_raise=brow_raise, brow_furrow=brow_furrow,
                        eye_openness=eye_openness, jaw_open=jaw_open, head_yaw=yaw,
                        head_pitch=0.0, gaze_on_screen=attention, attention=attention,
                        face_scale=scale)


def score(frames: list[FaceFeatures], config: ScoringConfig | None = None):
    scorer = RuleScorer(config or ScoringConfig())
    for f in frames:
        scorer.update(f)
    return scorer.result()


def stream(seconds: float, fps: float = 10.0, **kw) -> list[FaceFeatures]:
    return [frame(i / fps, **kw) for i in range(int(seconds * fps))]


def test_weights_sum_to_one() -> None:
    assert math.isclose(sum(WEIGHTS.values()), 1.0)


def test_no_face_at_all_scores_the_minimum() -> None:
    result = score(stream(20, present=False))
    assert result.qd == 1 and result.engagement == 0.0
    assert result.summary.presence == 0.0
    assert [s.kind for s in result.signals] == ["left_frame"]


def test_empty_session() -> None:
    result = RuleScorer().result()
    assert result.qd == 1 and result.signals == []


def test_more_attention_more_qd() -> None:
    watching = score(stream(30, attention=0.95)).qd
    glancing = score(stream(30, attention=0.3)).qd
    away = score(stream(30, attention=0.0)).qd
    assert watching > glancing > away


def test_smiles_raise_qd_and_furrows_lower_it() -> None:
    neutral = score(stream(30, smile=0.05)).qd
    smiling = score(stream(30, smile=0.8)).qd
    furrowed = score(stream(30, smile=0.05, brow_furrow=1.0)).qd
    assert smiling > neutral + 10
    assert furrowed < neutral


def test_presence_and_dwell() -> None:
    stayed = score(stream(60)).qd
    half = score([frame(i / 10, present=i % 2 == 0) for i in range(600)]).qd
    brief = score(stream(5)).qd
    assert stayed > half
    assert stayed > brief  # the same behaviour for longer earns dwell credit


def test_closed_eyes_count_against_vigilance() -> None:
    awake = score(stream(30)).summary
    drowsy = score(stream(30, eye_openness=0.05, attention=0.9)).summary
    assert awake.perclos == 0.0 and drowsy.perclos == 1.0
    assert rule_engagement(drowsy) < rule_engagement(awake)


def test_qd_from_engagement_bounds() -> None:
    assert qd_from_engagement(0.0) == 1
    assert qd_from_engagement(1.0) == 100
    assert qd_from_engagement(-3.0) == 1
    assert qd_from_engagement(7.0) == 100
    assert qd_from_engagement(float("nan")) == 1
    assert qd_from_engagement(0.5) == 51


@st.composite
def feature_streams(draw) -> list[FaceFeatures]:
    n = draw(st.integers(0, 80))
    unit = st.floats(0, 1)
    t = 0.0
    out = []
    for _ in range(n):
        t += draw(st.floats(0.0, 2.0))
        if draw(st.booleans()):
            out.append(FaceFeatures(t, False))
        else:
            out.append(FaceFeatures(t, True, draw(unit), draw(unit), draw(unit), draw(unit),
                                    draw(unit), draw(st.floats(-90, 90)),
                                    draw(st.floats(-90, 90)), draw(unit), draw(unit),
                                    draw(st.floats(0.0, 1.0))))
    return out


@given(feature_streams())
def test_any_stream_scores_within_bounds_and_deterministically(frames) -> None:
    a, b = score(frames), score(frames)
    assert 1 <= a.qd <= 100 and 0.0 <= a.engagement <= 1.0
    assert a == b
    assert all(0.0 <= v <= 1.0 for v in a.summary.vector())
    assert len(a.summary.vector()) == len(SUMMARY_NAMES)
    scorer = RuleScorer()
    for f in frames:
        scorer.update(f)
    assert scorer.current_qd() == a.qd  # the live QD is the session QD so far


def test_peak_interest_is_placed_and_named() -> None:
    frames = []
    for i in range(600):  # a minute at 10 fps
        t = i / 10
        if 42.0 <= t < 44.0:  # smiles and leans in (face 30% larger) at 00:42
            frames.append(frame(t, smile=0.9, scale=0.156))
        elif 20 <= t < 21:  # raises the brows briefly
            frames.append(frame(t, brow_raise=0.8))
        else:
            frames.append(frame(t))
    peaks = [s for s in score(frames).signals if s.kind == "peak_interest"]
    assert [p.at for p in peaks] == ["00:20", "00:42"]
    assert peaks[1].label == "smile + lean-in at 00:42"
    assert 42.0 <= peaks[1].at_s < 43.0
    assert peaks[0].label.startswith("brow raise")
    assert peaks[1].strength > peaks[0].strength


def test_peaks_need_attention() -> None:
    frames = [frame(i / 10, smile=0.9, attention=0.1) for i in range(100)]
    assert not [s for s in score(frames).signals if s.kind == "peak_interest"]


def test_peak_count_and_spacing_are_bounded() -> None:
    frames = [frame(i / 10, smile=0.9 if (i // 20) % 2 else 0.0) for i in range(1200)]
    config = ScoringConfig(max_peaks=3, peak_min_gap_s=10.0)
    peaks = [s for s in score(frames, config).signals if s.kind == "peak_interest"]
    assert len(peaks) == 3
    times = sorted(p.at_s for p in peaks)
    assert all(b - a >= 10.0 for a, b in itertools.pairwise(times))


def test_lapses() -> None:
    frames = ([frame(i / 10) for i in range(100)]
              + [frame(10 + i / 10, attention=0.05) for i in range(50)]  # looks away 5 s
              + [frame(15 + i / 10) for i in range(50)]
              + [frame(20 + i / 10, present=False) for i in range(10)]  # 1 s: too short
              + [frame(21 + i / 10) for i in range(20)])
    lapses = [s for s in score(frames).signals if s.kind != "peak_interest"]
    assert len(lapses) == 1
    (lapse,) = lapses
    assert lapse.kind == "looked_away" and lapse.at == "00:10"
    assert lapse.duration_s == pytest.approx(5.0)


def test_lean_in_is_relative_to_the_visitor() -> None:
    far = [frame(i / 10, scale=0.08) for i in range(100)]
    near = [frame(10 + i / 10, scale=0.10) for i in range(30)]  # 25% closer
    summary = score(far + near).summary
    assert 0.15 < summary.lean_in < 0.3
    # someone who simply stands closer all along is not leaning in
    assert score([frame(i / 10, scale=0.2) for i in range(130)]).summary.lean_in == 0.0


def test_mmss() -> None:
    assert mmss(0) == "00:00" and mmss(42.4) == "00:42" and mmss(42.9) == "00:42"
    assert mmss(3599.6) == "59:59" and mmss(3600) == "60:00"


def test_smoothing_wider_than_the_stream_keeps_its_length() -> None:
    """Three frames a millisecond apart ask for a window of hundreds of samples."""
    import numpy as np

    from perception.scoring import _smooth

    for n in (1, 2, 3, 4):
        x = np.arange(float(n))
        assert _smooth(x, 501).shape == (n,)
