"""Every `velocity` command has help (a command without it fails this test)."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from cli.main import app


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, (*prefix, name)))
    return out


def test_every_command_has_help() -> None:
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    commands = _commands(root)
    assert {("demo",), ("seed",), ("hub",), ("edge", "pair"), ("edge", "run")} <= set(commands)
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        cmd = root
        for part in path:
            cmd = cmd.commands[part]
        assert (cmd.help or "").strip(), f"velocity {' '.join(path)} has no help text"


def test_account_commands_manage_users(tmp_path: Any, monkeypatch: Any) -> None:
    """`velocity hub create-user / set-role / disable-user / enable-user / reset-password /
    logout-user` change the account in the database (a running hub closes its sessions)."""
    import asyncio

    import asyncpg

    from tests.pg import fresh_database

    url = asyncio.run(fresh_database())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("VELOCITY_SANDBOX_WORKERS", "1")
    monkeypatch.setenv("VELOCITY_DATA_DIR", str(tmp_path))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["hub", *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("create-user", "t1", "ana@t1.test", "--role", "SALES_DIRECTOR", "--team", "north",
        "--password", "a long passphrase")
    assert "SENIOR_BROKER" in run("set-role", "t1", "ana@t1.test", "SENIOR_BROKER")
    run("disable-user", "t1", "ana@t1.test")

    async def user() -> asyncpg.Record:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchrow("SELECT role, team_id, active, token_version, "
                                       "password_hash FROM hub_users WHERE email = 'ana@t1.test'")
        finally:
            await conn.close()

    row = asyncio.run(user())
    assert (row["role"], row["team_id"], row["active"], row["token_version"]) == (
        "SENIOR_BROKER", "north", False, 2)
    run("enable-user", "t1", "ana@t1.test")
    run("reset-password", "t1", "ana@t1.test", "--password", "another passphrase")
    run("logout-user", "t1", "ana@t1.test")
    after = asyncio.run(user())
    assert after["active"] and after["token_version"] == 5
    assert after["password_hash"] != row["password_hash"]
    result = runner.invoke(app, ["hub", "disable-user", "t1", "nobody@t1.test"])
    assert result.exit_code == 1 and "no user nobody@t1.test" in result.output
