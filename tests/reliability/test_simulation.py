"""Thousands of seeds of the deterministic simulation (hub, edges, faulty network in one
process), spread over one worker process per core.

A failure names its seed; ``python -m tests.reliability.sim --seed N`` replays it exactly and
prints the trace. ``VELOCITY_SIM_SEEDS`` runs more (or fewer) seeds than the default.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from tests.reliability.sim import SeedsRun, run_seeds, simulate

SEEDS = int(os.environ.get("VELOCITY_SIM_SEEDS", "2000"))


def test_every_seed_converges_with_every_write_exactly_once() -> None:
    workers = max(1, min(os.cpu_count() or 1, 4))
    chunks = [range(start, SEEDS, workers) for start in range(workers)]
    # spawn: a fresh interpreter per worker (a forked child would inherit pytest's event loop)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        runs: list[SeedsRun] = list(pool.map(run_seeds, chunks))
    failures = {seed: why for run in runs for seed, why in run.failures.items()}
    assert not failures, f"{len(failures)} failing seeds, first: {min(failures.items())}"
    assert sum(r.seeds for r in runs) == SEEDS
    # the plans did write, and did get refused
    assert sum(r.writes for r in runs) > SEEDS * 20 and sum(r.refused for r in runs) > 0


@pytest.mark.anyio
async def test_a_seed_replays_exactly() -> None:
    first, again = await simulate(7), await simulate(7)
    assert first.trace == again.trace and first.good == again.good
