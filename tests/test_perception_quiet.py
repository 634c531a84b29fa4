"""MediaPipe's native start-up chatter stays off stderr; errors and tracebacks do not."""

from __future__ import annotations

import os
import subprocess
import sys

from perception.quiet import is_noise

SCRIPT = """
import os, numpy as np
from perception.frames import Frame
from perception.landmarks import FaceMeshLandmarker
with FaceMeshLandmarker() as mesh:
    mesh.detect(Frame(0, 0.0, np.zeros((240, 320, 3), dtype=np.uint8)))
os.write(2, b"E0000 00:00:1.2 42 graph.cc:7] a real native error\\n")
raise SystemExit("boom: " + "the python error")
"""


def _run(**env: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)
    assert done.returncode == 1
    return done.stderr


def test_chatter_is_dropped_and_errors_kept() -> None:
    err = _run(VELOCITY_LOG_THIRD_PARTY="0")
    assert "TensorFlow Lite" not in err and "absl::InitializeLog" not in err
    assert "inference_feedback_manager" not in err
    assert "a real native error" in err
    assert "boom: the python error" in err


def test_chatter_shown_when_asked_for() -> None:
    err = _run(VELOCITY_LOG_THIRD_PARTY="1")
    assert "INFO: Created TensorFlow Lite" in err
    assert "boom: the python error" in err


def test_noise_pattern() -> None:
    assert is_noise(b"W0000 00:00:1796313029.446926   32075 inference_feedback_manager.cc:114] x")
    assert is_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert not is_noise(b"E0000 00:00:1796313029.446926   32075 graph.cc:114] failed")
    assert not is_noise(b"Traceback (most recent call last):")
