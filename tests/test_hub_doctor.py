"""`velocity hub doctor` finds what a hub needs and says what to fix."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from cli.main import app
from hub.service import Hub
from hub.settings import HubSettings
from tests.pg import fresh_database

runner = CliRunner()


def _doctor(url: str) -> tuple[int, str]:
    result = runner.invoke(app, ["hub", "doctor"], env={"DATABASE_URL": url, "COLUMNS": "200"})
    return result.exit_code, result.output


def test_doctor_reports_pending_migrations_then_all_clear() -> None:
    url = asyncio.run(fresh_database())
    code, out = _doctor(url)
    assert code == 1
    assert "migrations" in out and "pending: hub/0001_hub_core.sql" in out
    assert "velocity hub serve" in out  # what to do

    async def start_once() -> None:
        async with Hub(HubSettings(database_url=url, sandbox_workers=1)):
            pass

    asyncio.run(start_once())
    code, out = _doctor(url)
    assert code == 0, out
    for name in ("database", "migrations", "clock", "disk", "sandbox"):
        assert name in out
    assert "FAIL" not in out and "applied an update" in out


def test_doctor_names_an_unreachable_database() -> None:
    code, out = _doctor("postgresql://postgres@127.0.0.1:1/nowhere")
    assert code == 1
    assert "cannot connect" in out and "DATABASE_URL" in out
