"""A tenant's learned scorer: an ONNX model mapping the session feature vector to QD.

Contract (checked when the model loads, so a bad model fails at start-up, not mid-session):

- one input, ``float32``, shape ``[batch, 12]`` (batch dynamic or 1), the values of
  `perception.scoring.SUMMARY_NAMES` in that order, each in [0, 1];
- one output (or one named ``qd``), ``float32``, shape ``[batch]`` or ``[batch, 1]``: the QD;
  values are clipped to 1–100 and rounded;
- optional model metadata ``velocity.features``: the comma-joined feature names; when present it
  must match, which catches a model trained on another feature order.

Signals and the feature summary are the rule scorer's; only the QD comes from the model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, VelocityError
from perception.scoring import (
    DEFAULT_SCORING,
    SUMMARY_NAMES,
    FeatureSummary,
    RuleScorer,
    ScoringConfig,
)
from perception.settings import ENV_PREFIX

SETTING = f"{ENV_PREFIX}ONNX_MODEL"
METADATA_KEY = "velocity.features"


class ScorerFailed(VelocityError):
    """The learned scorer produced something that is not a QD."""

    code = "scorer_failed"


def _dim_ok(dim: Any, expected: int | None) -> bool:
    """A dimension matches when dynamic (None or a name) or equal to ``expected``."""
    return dim is None or isinstance(dim, str) or expected is None or dim == expected


class OnnxQDModel:
    """A validated onnxruntime session for one tenant's model (single-threaded)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{SETTING}: no such file {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/… types
            raise ConfigError(f"{SETTING}: {path} is not a loadable ONNX model: "
                              f"{str(exc).splitlines()[0][:200]}") from exc
        self.path = path
        self._input, self._output = self._check_signature()
        self._check_metadata()
        self._buffer = np.zeros((1, len(SUMMARY_NAMES)), dtype=np.float32)
        for probe in (0.0, 0.5, 1.0):
            self._buffer[:] = probe
            try:
                self._run()
            except ScorerFailed as exc:
                raise ConfigError(f"{SETTING}: {path}: on a probe input {exc}") from exc
            except Exception as exc:  # onnxruntime's own errors when the graph cannot run
                raise ConfigError(f"{SETTING}: {path} fails on a probe input: "
                                  f"{str(exc).splitlines()[0][:200]}") from exc

    def _check_signature(self) -> tuple[str, str]:
        k = len(SUMMARY_NAMES)
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ConfigError(f"{SETTING}: the model must take exactly one input (the "
                              f"{k}-feature vector), it takes {len(inputs)}")
        (inp,) = inputs
        if inp.type != "tensor(float)":
            raise ConfigError(f"{SETTING}: input {inp.name!r} must be float32, is {inp.type}")
        shape = list(inp.shape or [])
        if len(shape) != 2 or not _dim_ok(shape[0], 1) or shape[1] != k:
            raise ConfigError(f"{SETTING}: input {inp.name!r} must have shape [batch, {k}] "
                              f"(features: {', '.join(SUMMARY_NAMES)}), has {shape}")
        outputs = self._session.get_outputs()
        named = [o for o in outputs if o.name == "qd"]
        if named:
            out = named[0]
        elif len(outputs) == 1:
            out = outputs[0]
        else:
            raise ConfigError(f"{SETTING}: the model has {len(outputs)} outputs and none is "
                              "named 'qd'")
        if out.type != "tensor(float)":
            raise ConfigError(f"{SETTING}: output {out.name!r} must be float32, is {out.type}")
        oshape = list(out.shape or [])
        if not (len(oshape) == 1 and _dim_ok(oshape[0], 1)) and not (
                len(oshape) == 2 and _dim_ok(oshape[0], 1) and _dim_ok(oshape[1], 1)):
            raise ConfigError(f"{SETTING}: output {out.name!r} must have shape [batch] or "
                              f"[batch, 1] (one QD per row), has {oshape}")
        return inp.name, out.name

    def _check_metadata(self) -> None:
        meta = self._session.get_modelmeta().custom_metadata_map or {}
        declared = meta.get(METADATA_KEY)
        if declared is not None and [s.strip() for s in declared.split(",")] != list(
                SUMMARY_NAMES):
            raise ConfigError(f"{SETTING}: the model was built for features [{declared}], "
                              f"this build provides [{', '.join(SUMMARY_NAMES)}]")

    def _run(self) -> float:
        try:
            (out,) = self._session.run([self._output], {self._input: self._buffer})
        except ScorerFailed:
            raise
        except Exception as exc:
            raise ScorerFailed(f"the model failed: {str(exc).splitlines()[0][:200]}") from exc
        values = np.asarray(out).reshape(-1)
        if values.size != 1:
            raise ScorerFailed(f"the model returned {values.size} values for one row")
        qd = float(values[0])
        if not math.isfinite(qd):
            raise ScorerFailed(f"the model returned a non-finite QD ({qd})")
        return qd

    def qd(self, vector: list[float]) -> float:
        """The model's QD for one feature vector (unclipped)."""
        self._buffer[0, :] = vector
        return self._run()


class OnnxScorer(RuleScorer):
    """The rule scorer's aggregates and signals, with the QD from a tenant's ONNX model."""

    def __init__(self, model: OnnxQDModel, config: ScoringConfig = DEFAULT_SCORING) -> None:
        super().__init__(config)
        self.model = model
        self.name = f"onnx:{model.path.name}"

    def engagement(self, summary: FeatureSummary) -> float:
        qd = min(100.0, max(1.0, self.model.qd(summary.vector())))
        return (qd - 1.0) / 99.0
