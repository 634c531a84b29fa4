"""`velocity edge …`: pair a device with a hub and run its agent."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from core.errors import VelocityError
from core.settings import load_settings
from edge_agent import device
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings

app = typer.Typer(help="The device agent: offline-first replica, local API, sync.",
                  no_args_is_help=True)
console = Console()
DataOpt = Annotated[Path | None, typer.Option(help="Device data folder.",
                                               envvar="VELOCITY_EDGE_DATA_DIR")]
PassOpt = Annotated[str | None, typer.Option(
    help="Seals this device's keys; asked for when not given and a terminal is attached.",
    envvar="VELOCITY_EDGE_PASSPHRASE", show_default=False)]


def _settings(data_dir: Path | None, passphrase: str | None = None, **more: object
              ) -> EdgeSettings:
    """Settings from flags and ``VELOCITY_EDGE_…``; the passphrase is asked for on a terminal
    when neither gives one."""
    if passphrase is None and sys.stdin.isatty():
        passphrase = typer.prompt("device passphrase", hide_input=True)
    overrides = {k: v for k, v in {"data_dir": data_dir, "passphrase": passphrase,
                                   **more}.items() if v is not None}
    return load_settings(EdgeSettings, **overrides)


def _fail(exc: VelocityError) -> None:
    console.print(f"[red]error:[/] {exc.message}")
    raise typer.Exit(1)


@app.command()
def pair(
    hub: Annotated[str, typer.Option(help="Hub URL, e.g. http://hub.local:8000",
                                     envvar="VELOCITY_EDGE_HUB")],
    code: Annotated[str, typer.Option(help="One-time pairing code from an admin",
                                      envvar="VELOCITY_EDGE_PAIRING_CODE")],
    name: Annotated[str, typer.Option(help="A name for this device",
                                      envvar="VELOCITY_EDGE_NAME")] = socket.gethostname(),
    data_dir: DataOpt = None,
    passphrase: PassOpt = None,
) -> None:
    """Pair this device with a hub using a one-time code; its keys get sealed with a passphrase.

    Every later start of the agent needs the same passphrase."""
    settings = _settings(data_dir, passphrase)
    try:
        pairing = asyncio.run(device.pair(settings.data_dir, hub, code, name,
                                          settings.passphrase_value))
    except VelocityError as exc:
        _fail(exc)
    console.print(f"[green]paired[/] as device {pairing.device_id} of user {pairing.user_id}")


@app.command()
def run(
    data_dir: DataOpt = None,
    api_port: Annotated[int | None, typer.Option(
        help="Loopback port of the local API (0: any free port, printed).",
        envvar="VELOCITY_EDGE_API_PORT")] = None,
    passphrase: PassOpt = None,
) -> None:
    """Run the agent: the local API at once (online or not), sync beside it."""
    settings = _settings(data_dir, passphrase, api_port=api_port)

    async def main() -> None:
        async with EdgeAgent(settings) as agent:
            config = uvicorn.Config(create_local_app(agent), host=settings.api_host,
                                    port=settings.api_port, log_level="warning")
            server = uvicorn.Server(config)
            async with asyncio.TaskGroup() as tasks:
                announce = tasks.create_task(_announce(server, settings))
                progress = tasks.create_task(_show_catch_up(agent))
                await server.serve()
                announce.cancel()
                progress.cancel()

    try:
        asyncio.run(main())
    except VelocityError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        console.print("agent stopped")


async def _announce(server: uvicorn.Server, settings: EdgeSettings) -> None:
    """Print where the local API listens once it does (with port 0: the port it got)."""
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    console.print(f"local API on http://{settings.api_host}:{port} "
                  f"(token in {settings.data_dir / 'local.token'})")


async def _show_catch_up(agent: EdgeAgent) -> None:
    """A progress bar while the replica catches up with the hub; the API serves meanwhile."""
    sync = agent.sync
    assert sync is not None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("records"), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("sync", total=None)
        start = agent.replica.document_count
        while not sync.caught_up.is_set() and not sync.stopped_reason:
            bar.update(task, total=sync.incoming or None,
                       description="sync" if sync.online else "offline, retrying",
                       completed=agent.replica.document_count - start)
            await asyncio.sleep(0.2)
    if sync.stopped_reason:
        console.print(f"[red]sync stopped:[/] {sync.stopped_reason}")
    status = await agent.status()
    console.print(f"caught up: records={agent.replica.document_count} "
                  f"pending={status['pending_updates']}")


@app.command()
def status(data_dir: DataOpt = None, passphrase: PassOpt = None) -> None:
    """Show this device's replica: pending updates, cursor, refusals (works offline)."""
    settings = _settings(data_dir, passphrase)

    async def main() -> dict[str, object]:
        async with EdgeAgent(settings, sync=False) as agent:
            return await agent.status()

    try:
        console.print_json(json.dumps(asyncio.run(main())))
    except VelocityError as exc:
        _fail(exc)
