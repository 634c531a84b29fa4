"""Many seeds of the deterministic simulation (hub, edges, faulty network in one process).

A failure names its seed; ``python -m tests.reliability.sim --seed N`` replays it exactly and
prints the trace. ``VELOCITY_SIM_SEEDS`` runs more (or fewer) seeds than the default.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability.sim import simulate

pytestmark = pytest.mark.anyio
SEEDS = int(os.environ.get("VELOCITY_SIM_SEEDS", "100"))


async def test_every_seed_converges_with_every_write_exactly_once() -> None:
    writes = refused = 0
    for seed in range(SEEDS):
        outcome = await simulate(seed)
        writes += len(outcome.good)
        refused += len(outcome.forbidden)
    assert writes > SEEDS * 20 and refused > 0  # the plans did write, and did get refused


async def test_a_seed_replays_exactly() -> None:
    first, again = await simulate(7), await simulate(7)
    assert first.trace == again.trace and first.good == again.good
