"""Benchmark of Sentinel's per-frame pipeline at 640×480 on one core.

Stages, timed separately on every frame of a real face moving across the frame (scikit-image's
astronaut photo, drifting, nearer and farther, tilting): MediaPipe face-mesh landmarks (478
points, tracking mode, including the conversion to a NumPy array), feature extraction, and the
scorer's per-frame update (plus the live QD). Also: the end-of-session signals for a 10-minute
session, and a tenant ONNX scorer's call (a small linear model built here).

Run: ``.venv/bin/python bench/perception.py [--frames N] [--all-cores]``.
Writes bench/results/perception.*. Targets: whole pipeline ≤ 5 ms p50, scoring < 0.2 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench._common import percentile, write_results
from perception import samples
from perception.features import FaceFeatures, extract
from perception.frames import Frame
from perception.landmarks import FaceMeshLandmarker
from perception.scoring import SUMMARY_NAMES, RuleScorer


def _idle_ticks() -> dict[int, int]:
    ticks = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks[int(name[3:])] = int(values[3]) + int(values[4])  # idle + iowait
    return ticks


def pin_to_one_core() -> str:
    """Pin to the allowed CPU that was idlest over the last half second (Linux)."""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    if Path("/proc/stat").exists():
        before = _idle_ticks()
        time.sleep(0.5)
        after = _idle_ticks()
        cpu = max(allowed, key=lambda c: after.get(c, 0) - before.get(c, 0))
    os.sched_setaffinity(0, {cpu})  # every thread MediaPipe starts inherits this
    return f"pinned to CPU {cpu}"


def ms(samples_s: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(samples_s, 0.5) * 1e3, "p99_ms": percentile(samples_s, 0.99) * 1e3,
            "mean_ms": sum(samples_s) / len(samples_s) * 1e3}


def frame_pipeline(n: int, progress: Progress, *, iris: bool = True
                   ) -> tuple[dict[str, dict[str, float]], int]:
    """Wall-clock latency of each stage per frame, plus the process's CPU time per frame."""
    face = samples.face_crops("astronaut")["face"]
    images = list(samples.drift(face, n, width=640, height=480))
    times: dict[str, list[float]] = {"landmarks": [], "features": [], "scoring": [],
                                     "pipeline": []}
    cpu: dict[str, float] = dict.fromkeys(times, 0.0)
    found = 0
    warmup = 20
    task = progress.add_task("frames" if iris else "frames, no iris", total=n + warmup)
    with FaceMeshLandmarker(iris=iris) as mesh:
        scorer = RuleScorer()
        for i in range(n + warmup):
            image = images[i % n]
            frame = Frame(i, i / 15, image)
            c0, t0 = time.process_time(), time.perf_counter()
            found_face = mesh.detect(frame)
            c1, t1 = time.process_time(), time.perf_counter()
            features = extract(found_face, frame.t)
            c2, t2 = time.process_time(), time.perf_counter()
            scorer.update(features)
            scorer.current_qd()
            c3, t3 = time.process_time(), time.perf_counter()
            if i >= warmup:
                for key, spent in (("landmarks", c1 - c0), ("features", c2 - c1),
                                   ("scoring", c3 - c2), ("pipeline", c3 - c0)):
                    cpu[key] += spent
                found += features.present
                times["landmarks"].append(t1 - t0)
                times["features"].append(t2 - t1)
                times["scoring"].append(t3 - t2)
                times["pipeline"].append(t3 - t0)
            progress.advance(task)
    return {k: {**ms(v), "cpu_mean_ms": cpu[k] / n * 1e3} for k, v in times.items()}, found


def session_end(minutes: float = 10.0, fps: float = 10.0) -> dict[str, float]:
    scorer = RuleScorer()
    n = int(minutes * 60 * fps)
    for i in range(n):
        t = i / fps
        scorer.update(FaceFeatures(t, i % 7 != 0, smile=0.9 if (i // 50) % 6 == 0 else 0.1,
                                   eye_openness=1.0, gaze_on_screen=0.9, attention=0.9,
                                   face_scale=0.12))
    start = time.perf_counter()
    result = scorer.result()
    return {"frames": n, "result_ms": (time.perf_counter() - start) * 1e3,
            "signals": len(result.signals)}


def onnx_call(repeats: int = 2000) -> dict[str, float] | None:
    try:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        return None
    from perception.onnx_scorer import OnnxQDModel

    k = len(SUMMARY_NAMES)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "w"], ["z"]),
         helper.make_node("Add", ["z", "b"], ["qd"])], "bench",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("qd", TensorProto.FLOAT, ["batch", 1])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [k, 1],
                                        np.full(k, 8.0, np.float32)),
                     helper.make_tensor("b", TensorProto.FLOAT, [1], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.onnx"
        onnx.save(model, str(path))
        qd_model = OnnxQDModel(path)
    vector = [0.5] * k
    samples_s = []
    for _ in range(repeats):
        start = time.perf_counter()
        qd_model.qd(vector)
        samples_s.append(time.perf_counter() - start)
    return ms(samples_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--all-cores", action="store_true", help="do not pin to one core")
    args = parser.parse_args()
    console = Console()
    placement = "all cores" if args.all_cores else pin_to_one_core()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        stages, found = frame_pipeline(args.frames, progress)
        plain, _ = frame_pipeline(args.frames, progress, iris=False)
    end = session_end()
    onnx = onnx_call()
    load = os.getloadavg()[0]

    table = Table(title=f"Sentinel per frame, 640×480, {placement}, {found}/{args.frames} "
                        "frames with a face")
    for col in ("stage", "p50 ms", "p99 ms", "mean ms", "CPU ms", "target"):
        table.add_column(col, justify="left" if col in ("stage", "target") else "right")
    targets = {"pipeline": "p50 ≤ 5 ms", "scoring": "< 0.2 ms"}
    for name in ("landmarks", "features", "scoring", "pipeline"):
        s = stages[name]
        table.add_row(name, f"{s['p50_ms']:.3f}", f"{s['p99_ms']:.3f}", f"{s['mean_ms']:.3f}",
                      f"{s['cpu_mean_ms']:.3f}", targets.get(name, ""))
    for name in ("landmarks", "pipeline"):
        s = plain[name]
        table.add_row(f"{name}, no iris", f"{s['p50_ms']:.3f}", f"{s['p99_ms']:.3f}",
                      f"{s['mean_ms']:.3f}", f"{s['cpu_mean_ms']:.3f}", targets.get(name, ""))
    if onnx:
        table.add_row("ONNX scorer call (tenant model)", f"{onnx['p50_ms']:.3f}",
                      f"{onnx['p99_ms']:.3f}", f"{onnx['mean_ms']:.3f}", "", "")
    console.print(table)
    console.print(f"end of a {end['frames']:,}-frame session (10 min at 10 fps): signals in "
                  f"{end['result_ms']:.1f} ms; 1-min load average during the run {load:.2f}")

    md = ["| stage (640×480, " + placement + ") | p50 | p99 | mean | CPU mean | target |",
          "| --- | --- | --- | --- | --- | --- |"]
    for name in ("landmarks", "features", "scoring", "pipeline"):
        s = stages[name]
        md.append(f"| {name} | {s['p50_ms']:.3f} ms | {s['p99_ms']:.3f} ms | "
                  f"{s['mean_ms']:.3f} ms | {s['cpu_mean_ms']:.3f} ms | "
                  f"{targets.get(name, '')} |")
    for name in ("landmarks", "pipeline"):
        s = plain[name]
        md.append(f"| {name}, no iris (`VELOCITY_SENTINEL_IRIS=false`) | {s['p50_ms']:.3f} ms "
                  f"| {s['p99_ms']:.3f} ms | {s['mean_ms']:.3f} ms | {s['cpu_mean_ms']:.3f} ms "
                  f"| {targets.get(name, '')} |")
    if onnx:
        md.append(f"| ONNX scorer call (tenant model) | {onnx['p50_ms']:.3f} ms | "
                  f"{onnx['p99_ms']:.3f} ms | {onnx['mean_ms']:.3f} ms | | |")
    md.append(f"| end-of-session signals, {end['frames']:,} frames | {end['result_ms']:.1f} ms "
              "| | | | |")
    md.append("")
    md.append(f"{found}/{args.frames} frames had a face (astronaut photo drifting across the "
              f"frame); 1-min load average {load:.2f} (other processes were running on this "
              "machine). Landmarks include MediaPipe's own image copy and the conversion to "
              "NumPy; scoring is the per-frame update plus the live QD. CPU = the process's CPU "
              "time per frame (all threads).")
    figures = {"frames": args.frames, "frames_with_face": found, "placement": placement,
               "load_average_1min": load, **{f"{k}": v for k, v in stages.items()},
               "no_iris": plain,
               "session_end": end, "onnx_call": onnx}
    path = write_results("perception", figures, "\n".join(md))
    console.print(f"written to {path} and {path.with_suffix('.json')}")


if __name__ == "__main__":
    main()
