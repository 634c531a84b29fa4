"""Shared bits of the benchmarks: timing, percentiles, writing results."""

from __future__ import annotations

import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of ``fn()``, with the garbage collector run before and paused during, so a
    collection triggered by an earlier step is not billed to this one."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        value = fn()
        return time.perf_counter() - start, value
    finally:
        gc.enable()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def write_results(name: str, figures: dict[str, Any], markdown: str) -> Path:
    """Write ``bench/results/<name>.json`` and ``.md`` with the machine they ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": __import__("os").cpu_count()}
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, **figures}, indent=2))
    path = RESULTS / f"{name}.md"
    path.write_text(markdown + f"\n\n_{meta['ran_at']}, Python {meta['python']}, "
                    f"{meta['cpus']} CPUs_\n")
    return path
