"""Shared fixtures: small, explicit, real parts."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
os.environ.setdefault("VELOCITY_EDGE_PASSPHRASE", "test device passphrase")
"""Edge devices made by tests (and their subprocesses) seal their keys with this."""



@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
