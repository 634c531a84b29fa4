"""The browser for WebOS tests: Debian's Chromium at /usr/bin/chromium, driven by Playwright.

Playwright's own browser download is never used (nothing may come from the network during a
test, and a second browser build would drift from the one the machine patches). When the
binary is missing, the session installs the distribution package once if it runs as root (the
setup of a fresh test machine or container), and otherwise stops with the command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed with apt-get when missing and we are root (idempotent)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("the WebOS browser tests need Debian's Chromium at /usr/bin/chromium: run "
                    "`sudo apt-get install -y chromium` (Playwright's bundled browsers are not "
                    "used)", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed; install Chromium by hand:\n"
                        f"{done.stderr[-2000:]}", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail("apt-get installed chromium but /usr/bin/chromium is missing",
                    pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> Path:
    return ensure_chromium()
