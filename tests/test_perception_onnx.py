"""A tenant's ONNX scorer: its signature is checked at load, and QD flows through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from core.errors import ConfigError
from perception.features import FaceFeatures
from perception.onnx_scorer import METADATA_KEY, OnnxQDModel, OnnxScorer
from perception.scoring import SUMMARY_NAMES, RuleScorer
from perception.session import Pipeline
from perception.settings import SentinelSettings

K = len(SUMMARY_NAMES)
SETTING = "VELOCITY_SENTINEL_ONNX_MODEL"


def linear_model(path: Path, weights: np.ndarray, bias: float, *, in_dims=("batch", K),
                 out_dims=("batch", 1), out_name: str = "qd",
                 extra_input: bool = False, metadata: str | None = None,
                 divide_by_zero: bool = False) -> Path:
    """qd = features · weights + bias, built node by node (MatMul, Add)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [K, 1], weights.astype(np.float32).ravel())
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [bias])
    nodes = [helper.make_node("MatMul", ["features", "w"], ["z"]),
             helper.make_node("Add", ["z", "b"], [out_name if not divide_by_zero else "y"])]
    inits = [w, b]
    if divide_by_zero:
        inits.append(helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
        nodes.append(helper.make_node("Div", ["y", "zero"], [out_name]))
    inputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, list(in_dims))]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, [1]))
    graph = helper.make_graph(nodes, "tenant_qd", inputs,
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT,
                                                             list(out_dims))],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata is not None:
        helper.set_model_props(model, {METADATA_KEY: metadata})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


WEIGHTS = np.zeros(K)
WEIGHTS[SUMMARY_NAMES.index("attention")] = 60.0
WEIGHTS[SUMMARY_NAMES.index("smile")] = 40.0


def frames(attention: float, smile: float, n: int = 50) -> list[FaceFeatures]:
    return [FaceFeatures(i / 10, True, smile=smile, eye_openness=1.0, gaze_on_screen=attention,
                         attention=attention, face_scale=0.1) for i in range(n)]


def run(scorer, stream):
    for f in stream:
        scorer.update(f)
    return scorer.result()


def test_scores_flow_through_the_model(tmp_path: Path) -> None:
    path = linear_model(tmp_path / "tenant.onnx", WEIGHTS, 1.0,
                        metadata=",".join(SUMMARY_NAMES))
    model = OnnxQDModel(path)
    result = run(OnnxScorer(model), frames(attention=0.5, smile=0.25))
    assert result.qd == round(1 + 60 * 0.5 + 40 * 0.25)  # 41
    assert result.scorer == "onnx:tenant.onnx"
    # the model, not the rules, decides: another stream moves QD the way its weights say
    assert run(OnnxScorer(model), frames(attention=1.0, smile=1.0)).qd == 100  # 101 → clipped
    assert run(OnnxScorer(model), frames(attention=0.0, smile=0.0)).qd == 1
    # signals and the summary are the rule scorer's
    rules = run(RuleScorer(), frames(attention=0.5, smile=0.25))
    assert result.summary == rules.summary and result.signals == rules.signals
    assert rules.qd != result.qd


def test_model_output_is_clipped_and_rounded(tmp_path: Path) -> None:
    model = OnnxQDModel(linear_model(tmp_path / "m.onnx", np.zeros(K), 250.0))
    assert run(OnnxScorer(model), frames(0.5, 0.5)).qd == 100
    model = OnnxQDModel(linear_model(tmp_path / "n.onnx", np.zeros(K), -5.0))
    assert run(OnnxScorer(model), frames(0.5, 0.5)).qd == 1
    model = OnnxQDModel(linear_model(tmp_path / "r.onnx", np.zeros(K), 42.4))
    assert run(OnnxScorer(model), frames(0.5, 0.5)).qd == 42


def test_pipeline_uses_the_configured_model(tmp_path: Path) -> None:
    path = linear_model(tmp_path / "tenant.onnx", WEIGHTS, 1.0)
    pipeline = Pipeline.from_settings(SentinelSettings(onnx_model=path))
    scorer = pipeline.new_scorer()
    assert isinstance(scorer, OnnxScorer)
    assert run(scorer, frames(0.5, 0.25)).qd == 41
    assert isinstance(Pipeline.from_settings(SentinelSettings()).new_scorer(), RuleScorer)


def _graph(path: Path, nodes, inputs, outputs, inits=(), opset: int = 13) -> Path:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs,
                                                initializer=list(inits)),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _io(name: str, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, list(dims))


def _weights(rows: int, cols: int = 1):
    return helper.make_tensor("w", TensorProto.FLOAT, [rows, cols],
                              np.zeros(rows * cols, np.float32))


MATMUL = [helper.make_node("MatMul", ["features", "w"], ["qd"])]
SUM = [helper.make_node("ReduceSum", ["features"], ["qd"], keepdims=1)]

BAD_MODELS = {
    "too many features": (
        lambda p: _graph(p, MATMUL, [_io("features", ["batch", K + 1])],
                         [_io("qd", ["batch", 1])], [_weights(K + 1)]),
        f"shape [batch, {K}]"),
    "no batch axis": (
        lambda p: _graph(p, SUM, [_io("features", [K])], [_io("qd", [1])], opset=11),
        f"shape [batch, {K}]"),
    "fixed batch of 4": (
        lambda p: linear_model(p, np.zeros(K), 1.0, in_dims=(4, K), out_dims=(4, 1)),
        f"shape [batch, {K}]"),
    "float64 input": (
        lambda p: _graph(p, [helper.make_node("Cast", ["features"], ["f"],
                                              to=TensorProto.FLOAT),
                             helper.make_node("ReduceSum", ["f"], ["qd"], keepdims=1)],
                         [_io("features", ["batch", K], TensorProto.DOUBLE)],
                         [_io("qd", ["batch", 1])], opset=11),
        "must be float32"),
    "two inputs": (
        lambda p: linear_model(p, np.zeros(K), 1.0, extra_input=True),
        "exactly one input"),
    "three outputs per row": (
        lambda p: _graph(p, MATMUL, [_io("features", ["batch", K])],
                         [_io("qd", ["batch", 3])], [_weights(K, 3)]),
        "[batch, 1]"),
    "other feature order": (
        lambda p: linear_model(p, np.zeros(K), 1.0, metadata="smile,attention"),
        "built for features"),
    "NaN output": (
        lambda p: linear_model(p, np.zeros(K), 1.0, divide_by_zero=True),
        "non-finite"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_signatures_are_refused_at_load(tmp_path: Path, case: str) -> None:
    build, complaint = BAD_MODELS[case]
    path = build(tmp_path / "bad.onnx")
    with pytest.raises(ConfigError) as err:
        OnnxQDModel(path)
    assert SETTING in str(err.value)
    assert complaint in str(err.value)


def test_missing_and_garbage_files_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=SETTING):
        OnnxQDModel(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a model at all")
    with pytest.raises(ConfigError, match=f"{SETTING}.*not a loadable ONNX model"):
        OnnxQDModel(garbage)
    with pytest.raises(ConfigError, match=SETTING):
        Pipeline.from_settings(SentinelSettings(onnx_model=tmp_path / "absent.onnx"))
