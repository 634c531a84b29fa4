"""The rule-based QD scorer: a session's feature stream → QD 1–100 and named signals.

`RuleScorer.update` folds one frame into running sums in O(1) (so a live QD is always at hand)
and keeps a compact per-frame trace for the end-of-session signals (peak-interest moments and
attention lapses). The formula and the reasons for each weight are in docs/perception.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, Field

from perception.features import FaceFeatures

SUMMARY_NAMES = ("presence", "dwell", "attention", "gaze_on_screen", "smile", "smile_share",
                 "brow_raise", "brow_furrow", "jaw_open", "eye_openness", "perclos", "lean_in")

# engagement = presence × Σ weight·term − furrow penalty (see docs/perception.md)
WEIGHTS = {"attention": 0.30, "positive": 0.25, "interest": 0.10, "lean_in": 0.10,
           "vigilance": 0.10, "dwell": 0.15}
FURROW_PENALTY = 0.05
ACTIVE = 0.5  # a component at or above this counts as shown (smile share, peak labels)
CLOSED = 0.2  # eye openness below this counts as closed (PERCLOS)
LEAN_FULL = 0.15  # face 15% larger than the visitor's own baseline = full lean-in
LEAN_BASELINE_S = 20.0  # time constant of the lean-in baseline (face size), seconds
LAPSE_ATTENTION = 0.3
PEAK_THRESHOLD = 0.5
SMOOTH_S = 0.5
MAX_DT = 1.0  # a gap longer than this between analysed frames counts as this much dwell


def mmss(seconds: float) -> str:
    """Video-timeline form: whole seconds elapsed, like a player's clock."""
    s = math.floor(max(0.0, seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


class Signal(BaseModel):
    """Something the broker can act on, placed on the session's (or the video's) timeline."""

    kind: Literal["peak_interest", "looked_away", "left_frame"]
    at_s: float = Field(ge=0)
    at: str  # mm:ss
    label: str  # e.g. "smile + lean-in at 00:42"
    strength: float = Field(ge=0, le=1)
    duration_s: float = Field(0.0, ge=0)


class FeatureSummary(BaseModel):
    """Session aggregates, each in [0, 1] except ``dwell_s``; the learned scorer's input."""

    presence: float
    dwell: float
    dwell_s: float
    attention: float
    gaze_on_screen: float
    smile: float
    smile_share: float
    brow_raise: float
    brow_furrow: float
    jaw_open: float
    eye_openness: float
    perclos: float
    lean_in: float
    mean_abs_yaw: float
    mean_abs_pitch: float

    def vector(self) -> list[float]:
        return [float(getattr(self, name)) for name in SUMMARY_NAMES]


class Score(BaseModel):
    qd: int = Field(ge=1, le=100)
    engagement: float = Field(ge=0, le=1)
    scorer: str
    signals: list[Signal]
    summary: FeatureSummary


@runtime_checkable
class Scorer(Protocol):
    name: str

    def update(self, features: FaceFeatures) -> None: ...

    def current_qd(self) -> int: ...

    def result(self) -> Score: ...


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    dwell_saturation_s: float = 60.0
    max_peaks: int = 5
    peak_min_gap_s: float = 5.0
    lapse_min_s: float = 3.0


DEFAULT_SCORING = ScoringConfig()


def qd_from_engagement(engagement: float) -> int:
    e = 0.0 if not engagement > 0.0 else 1.0 if engagement > 1.0 else engagement
    return 1 + math.floor(99.0 * e + 0.5)


def rule_engagement(v: FeatureSummary) -> float:
    """The documented formula: presence-gated weighted sum, minus a small furrow penalty."""
    positive = 0.5 * v.smile + 0.5 * v.smile_share
    terms = {"attention": v.attention, "positive": positive, "interest": v.brow_raise,
             "lean_in": v.lean_in, "vigilance": 1.0 - v.perclos, "dwell": v.dwell}
    e = v.presence * sum(WEIGHTS[k] * terms[k] for k in WEIGHTS) - FURROW_PENALTY * v.brow_furrow
    return min(1.0, max(0.0, e))


class RuleScorer:
    """Running aggregates and a per-frame trace of one session; scores with `rule_engagement`."""

    name = "rules-v1"

    def __init__(self, config: ScoringConfig = DEFAULT_SCORING) -> None:
        self.config = config
        self._n = 0
        self._n_face = 0
        self._dwell_s = 0.0
        self._sums = dict.fromkeys(("attention", "gaze_on_screen", "smile", "brow_raise",
                                    "brow_furrow", "jaw_open", "eye_openness", "abs_yaw",
                                    "abs_pitch"), 0.0)
        self._n_smile = 0
        self._n_closed = 0
        self._n_lean = 0
        self._last_t: float | None = None
        self._baseline: float | None = None
        # trace: t, present, attention, smile, brow_raise, jaw_open, lean_in
        self._trace: list[tuple[float, bool, float, float, float, float, float]] = []

    # --- per frame --------------------------------------------------------------------------

    def update(self, f: FaceFeatures) -> None:
        dt = 0.0 if self._last_t is None else min(max(f.t - self._last_t, 0.0), MAX_DT)
        self._last_t = f.t
        self._n += 1
        if not f.present:
            self._trace.append((f.t, False, 0.0, 0.0, 0.0, 0.0, 0.0))
            return
        self._n_face += 1
        self._dwell_s += dt
        s = self._sums
        s["attention"] += f.attention
        s["gaze_on_screen"] += f.gaze_on_screen
        s["smile"] += f.smile
        s["brow_raise"] += f.brow_raise
        s["brow_furrow"] += f.brow_furrow
        s["jaw_open"] += f.jaw_open
        s["eye_openness"] += f.eye_openness
        s["abs_yaw"] += abs(f.head_yaw)
        s["abs_pitch"] += abs(f.head_pitch)
        self._n_smile += f.smile >= ACTIVE
        self._n_closed += f.eye_openness < CLOSED
        lean = self._lean_in(f.face_scale, dt)
        self._n_lean += lean >= ACTIVE
        self._trace.append((f.t, True, f.attention, f.smile, f.brow_raise, f.jaw_open, lean))

    def _lean_in(self, scale: float, dt: float) -> float:
        if scale <= 0.0:
            return 0.0
        if self._baseline is None:
            self._baseline = scale
            return 0.0
        lean = (scale / self._baseline - 1.0) / LEAN_FULL
        alpha = 1.0 - math.exp(-dt / LEAN_BASELINE_S)
        self._baseline += alpha * (scale - self._baseline)
        return 0.0 if lean <= 0.0 else 1.0 if lean >= 1.0 else lean

    # --- session ----------------------------------------------------------------------------

    def summary(self) -> FeatureSummary:
        n, k, s = self._n, self._n_face, self._sums

        def mean(key: str) -> float:
            return s[key] / k if k else 0.0

        def share(count: int) -> float:
            return count / k if k else 0.0

        return FeatureSummary(
            presence=k / n if n else 0.0,
            dwell=1.0 - math.exp(-self._dwell_s / self.config.dwell_saturation_s),
            dwell_s=self._dwell_s, attention=mean("attention"),
            gaze_on_screen=mean("gaze_on_screen"), smile=mean("smile"),
            smile_share=share(self._n_smile), brow_raise=mean("brow_raise"),
            brow_furrow=mean("brow_furrow"), jaw_open=mean("jaw_open"),
            eye_openness=mean("eye_openness"), perclos=share(self._n_closed),
            lean_in=share(self._n_lean), mean_abs_yaw=mean("abs_yaw"),
            mean_abs_pitch=mean("abs_pitch"))

    def engagement(self, summary: FeatureSummary) -> float:
        return rule_engagement(summary)

    def current_qd(self) -> int:
        return qd_from_engagement(self.engagement(self.summary()))

    def result(self) -> Score:
        summary = self.summary()
        engagement = self.engagement(summary)
        return Score(qd=qd_from_engagement(engagement), engagement=engagement,
                     scorer=self.name, signals=self.signals(), summary=summary)

    # --- signals ----------------------------------------------------------------------------

    def signals(self) -> list[Signal]:
        if not self._trace:
            return []
        return sorted(self._peaks() + self._lapses(), key=lambda s: (s.at_s, s.kind))

    def _arrays(self) -> dict[str, np.ndarray]:
        cols = list(zip(*self._trace, strict=True))
        names = ("t", "present", "attention", "smile", "brow_raise", "jaw_open", "lean_in")
        return {name: np.asarray(col, dtype=np.float64) for name, col in
                zip(names, cols, strict=True)}

    def _peaks(self) -> list[Signal]:
        a = self._arrays()
        t = a["t"]
        if len(t) < 2 or self.config.max_peaks == 0:
            return []
        period = float(np.median(np.diff(t))) or 1.0
        width = max(1, round(SMOOTH_S / period) | 1)
        components = {"smile": a["smile"], "brow raise": a["brow_raise"],
                      "lean-in": a["lean_in"],
                      "surprise": np.minimum(a["brow_raise"], a["jaw_open"])}
        smooth = {k: _smooth(v, width) for k, v in components.items()}
        stack = np.stack(list(smooth.values()))
        active = (stack >= ACTIVE).sum(axis=0)
        intensity = _smooth(a["attention"], width) * np.minimum(
            1.0, stack.max(axis=0) + 0.15 * np.maximum(active - 1, 0))
        intensity[a["present"] == 0] = 0.0
        peaks = []
        for start, stop in _runs(intensity >= PEAK_THRESHOLD):
            i = start + int(np.argmax(intensity[start:stop]))
            shown = [k for k, v in smooth.items() if v[i] >= ACTIVE] or [
                max(smooth, key=lambda k: smooth[k][i])]
            peaks.append((float(intensity[i]), float(t[i]), " + ".join(shown)))
        chosen: list[tuple[float, float, str]] = []
        for strength, at, label in sorted(peaks, key=lambda p: (-p[0], p[1])):
            if len(chosen) >= self.config.max_peaks:
                break
            if all(abs(at - c[1]) >= self.config.peak_min_gap_s for c in chosen):
                chosen.append((strength, at, label))
        return [Signal(kind="peak_interest", at_s=at, at=mmss(at),
                       label=f"{label} at {mmss(at)}", strength=round(min(1.0, strength), 4))
                for strength, at, label in chosen]

    def _lapses(self) -> list[Signal]:
        a = self._arrays()
        t = a["t"]
        away = (a["present"] == 0) | (a["attention"] < LAPSE_ATTENTION)
        out = []
        for start, stop in _runs(away):
            end = t[stop] if stop < len(t) else t[stop - 1]
            duration = float(end - t[start])
            if duration < self.config.lapse_min_s:
                continue
            absent = bool(np.all(a["present"][start:stop] == 0))
            kind: Literal["left_frame", "looked_away"] = "left_frame" if absent else "looked_away"
            what = "out of frame" if absent else "looked away"
            out.append(Signal(kind=kind, at_s=float(t[start]), at=mmss(float(t[start])),
                              label=f"{what} at {mmss(float(t[start]))} for "
                                    f"{_seconds(duration)}",
                              strength=1.0 - float(a["attention"][start:stop].mean()),
                              duration_s=duration))
        return out


def _seconds(duration: float) -> str:
    return f"{duration:.1f} s" if duration < 10 else f"{duration:.0f} s"


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``width`` samples (at most the stream's length, kept odd):
    ``np.convolve(mode="same")`` returns the longer of its inputs."""
    width = min(width, len(x) if len(x) % 2 else len(x) - 1)
    if width <= 1:
        return x.copy()
    kernel = np.ones(width)
    return np.convolve(x, kernel, mode="same") / np.convolve(np.ones_like(x), kernel,
                                                             mode="same")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
