"""Every `velocity` command runs for real: flags read their variables, the README lists them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import typer
from typer.testing import CliRunner

from cli.main import app
from cli.reference import walk, with_table
from tests.pg import fresh_database

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_every_flag_reads_a_variable_and_its_help_says_which() -> None:
    root = typer.main.get_command(app)
    for path, cmd in [((), root), *walk(root)]:
        help_text = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).output
        for param in cmd.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            assert isinstance(param.envvar, str) and param.envvar.startswith("VELOCITY_"), (
                f"velocity {' '.join(path)} --{param.name} reads no VELOCITY_ variable")
            assert param.envvar in help_text, (path, param.name)


def test_readme_command_table_is_the_help() -> None:
    readme = (ROOT / "README.md").read_text()
    assert with_table(readme) == readme, (
        "README's command table drifted from the commands' help: run "
        "`.venv/bin/python -m cli.reference README.md`")


def _count(url: str, sql: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_hub_commands_and_an_edge_paired_from_the_cli(tmp_path: Path) -> None:
    db = asyncio.run(fresh_database())
    env = {"DATABASE_URL": db, "VELOCITY_SANDBOX_WORKERS": "1"}

    made = runner.invoke(app, ["hub", "create-user", "t1", "boss@t1.test"], env={
        **env, "VELOCITY_USER_ROLE": "ADMIN", "VELOCITY_USER_PASSWORD": PASSWORD})
    assert made.exit_code == 0, made.output
    assert "boss@t1.test (ADMIN)" in made.output

    seeded = runner.invoke(app, ["seed"], env={**env, "VELOCITY_SEED_SIZE": "small",
                                               "VELOCITY_SEED_TENANT": "t1"})
    assert seeded.exit_code == 0, seeded.output
    loaded = int(re.search(r"(\d+) new records loaded into tenant t1", seeded.output)[1])
    logged = _count(db, "SELECT count(*) FROM hub_updates WHERE tenant_id = 't1'")
    assert loaded > 1000 and logged >= loaded

    compacted = runner.invoke(app, ["hub", "compact", "t1"],
                              env={**env, "VELOCITY_COMPACT_KEEP": "100"})
    assert compacted.exit_code == 0, compacted.output
    dropped = int(re.search(r"dropped (\d+) raw updates", compacted.output)[1])
    assert dropped == logged - 100
    assert _count(db, "SELECT count(*) FROM hub_updates WHERE tenant_id = 't1' "  # rows stay:
                  "AND length(data) > 0") == 100  # receipts and audit trail; data goes

    hub = subprocess.Popen(
        [str(Path(sys.executable).with_name("velocity")), "hub", "--port", "0"],
        cwd=tmp_path,
        env={**os.environ, **env, "COLUMNS": "200", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert hub.stdout is not None
        line = hub.stdout.readline()
        url = re.search(r"hub listening on (http://127\.0\.0\.1:(\d+))", line)
        assert url and url[2] not in {"0", "8000"}, line
        hub_url = url[1]
        with httpx.Client(base_url=hub_url) as http:
            assert http.get("/health").status_code == 200
            token = http.post("/api/auth/login", json={"email": "boss@t1.test",
                                                       "password": PASSWORD}).json()
            me = http.get("/api/auth/me", headers={
                "Authorization": f"Bearer {token['access_token']}"}).json()
            code = http.post("/api/devices/pairing-codes", json={
                "user_id": me["user_id"], "device_kind": "ipad"},
                headers={"Authorization": f"Bearer {token['access_token']}"}).json()["code"]
        device = tmp_path / "ipad"
        paired = runner.invoke(app, ["edge", "pair", "--name", "test ipad"], env={
            "VELOCITY_EDGE_HUB": hub_url, "VELOCITY_EDGE_PAIRING_CODE": code,
            "VELOCITY_EDGE_DATA_DIR": str(device)})
        assert paired.exit_code == 0, paired.output
        assert "paired" in paired.output
        status = runner.invoke(app, ["edge", "status", "--data-dir", str(device)])
        assert status.exit_code == 0, status.output
        report = json.loads(status.output)
        assert report["pending_updates"] == 0 and report["online"] is False
    finally:
        hub.send_signal(signal.SIGINT)
        hub.communicate(timeout=30)


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    out = runner.invoke(app, ["version"])
    assert out.exit_code == 0 and out.output.strip() == version("velocity-edge")


def test_demo_converges_and_prints_no_third_party_chatter(tmp_path: Path) -> None:
    db = asyncio.run(fresh_database())
    done = subprocess.run(
        [str(Path(sys.executable).with_name("velocity")), "demo", "--no-serve", "--port", "0",
         "--people", "60"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "DATABASE_URL": db, "COLUMNS": "200", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "CONVERGED" in done.stdout
    for chatter in ("TensorFlow Lite", "absl::InitializeLog", "W0000", "I0000"):
        assert chatter not in done.stderr and chatter not in done.stdout, chatter


def test_ios_vectors_writes_the_committed_golden_vectors(tmp_path: Path) -> None:
    out = runner.invoke(app, ["ios", "vectors", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    committed = ROOT / "ios_bridge" / "vectors" / "v1"
    written = sorted(p.name for p in tmp_path.rglob("*.json"))
    assert written == sorted(p.name for p in committed.glob("*.json"))
    for path in tmp_path.rglob("*.json"):
        assert json.loads(path.read_text()) == json.loads((committed / path.name).read_text())
