"""Helpers of the reliability tests: paired edge devices, waiting for conditions, checks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx

from edge_agent.device import IDENTITY_FILE, pair
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from tests.hubkit import login


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20,
                what: str = "condition") -> float:
    """Wait until ``check()`` holds; returns the seconds it took."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < timeout, f"{what} not reached in {timeout}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def paired(server: HubServer, folder: Path, user_id: str, *,
                 hub_url: str | None = None, **settings: object) -> EdgeSettings:
    """Pair a device folder with ``server``; ``hub_url``: reach the hub there instead (a proxy).
    """
    admin = await login(server, f"admin@{user_id.split('-')[0]}.test")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/devices/pairing-codes", headers=admin,
                            json={"user_id": user_id, "device_kind": "ipad"})
        r.raise_for_status()
    await pair(folder, server.url, r.json()["code"], folder.name)
    if hub_url is not None:
        point_at(folder, hub_url)
    return EdgeSettings(data_dir=folder, **{"backoff_cap_s": 1.0, **settings})  # type: ignore[arg-type]


def point_at(folder: Path, hub_url: str) -> None:
    """Make a paired device reach its hub at ``hub_url`` from now on."""
    path = folder / IDENTITY_FILE
    identity = json.loads(path.read_text())
    path.write_text(json.dumps({**identity, "hub_url": hub_url}))


ROOT = Path(__file__).resolve().parents[2]
VELOCITY = [sys.executable, "-c", "from cli.main import app; app()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A `velocity …` command run as its own process group, killed with `kill -9` on demand
    (the whole group: a hub's sandbox workers die with it, as on a power cut)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*VELOCITY, *self.args], cwd=ROOT, stdout=out, stderr=out,
                env={**os.environ, "PYTHONPATH": str(ROOT), **self.env},
                start_new_session=True)
        self.starts += 1

    def kill_9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Ctrl-C, then kill -9 after 15 s."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_9()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@contextlib.contextmanager
def logs_on_failure(*logs: Path, lines: int = 40) -> Iterator[None]:
    """Re-raise a failed check with the last lines of each process log (a flake explains itself)."""
    try:
        yield
    except AssertionError as failure:
        tails = [f"--- {log.name} ---\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-lines:])
            for log in logs if log.exists()]
        raise AssertionError("\n".join([str(failure), *tails])) from failure


def integrity(path: Path) -> str:
    """SQLite's own verdict on a database file ("ok" when sound)."""
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
