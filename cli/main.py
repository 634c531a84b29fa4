"""Entry point of the `velocity` console command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Velocity Edge: offline-first CRDT sync for a private real-estate sales OS.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    log_format: Annotated[str | None, typer.Option(
        help="Log lines as text or json.", envvar="VELOCITY_LOG_FORMAT")] = None,
    log_level: Annotated[str | None, typer.Option(
        help="DEBUG, INFO, WARNING or ERROR (default INFO; the demo: WARNING).",
        envvar="VELOCITY_LOG_LEVEL")] = None,
) -> None:
    """Velocity Edge: offline-first CRDT sync for a private real-estate sales OS."""
    from core.logs import LogSettings, configure_logging
    from core.settings import load_settings

    overrides = {k: v for k, v in (("format", log_format), ("level", log_level)) if v}
    settings = load_settings(LogSettings, **overrides)
    configure_logging(settings)
    ctx.obj = settings


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as _version

    typer.echo(_version("velocity-edge"))


@app.command()
def demo(
    ctx: typer.Context,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Exit after the convergence "
                                           "check (for CI).", envvar="VELOCITY_DEMO_NO_SERVE")
                        ] = False,
    people: Annotated[int, typer.Option(help="People in the seeded CRM.",
                                        envvar="VELOCITY_DEMO_PEOPLE")] = 300,
    port: Annotated[int, typer.Option(help="Hub port (0: any free port).",
                                      envvar="VELOCITY_PORT")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(
        help="Keep the hub's embedded PostgreSQL here (default: a temporary folder).",
        envvar="VELOCITY_DATA_DIR")] = None,
) -> None:
    """Start a hub, seed a CRM, pair an iPad and a kiosk, make an offline conflict, converge."""
    import asyncio
    import logging

    from rich.console import Console

    from cli.demo import run_demo

    if "level" not in ctx.obj.model_fields_set:  # the demo's own output tells the story
        logging.getLogger().setLevel(logging.WARNING)
    console = Console()
    try:
        ok = asyncio.run(run_demo(console, serve=not no_serve, people=people, port=port,
                                  data_dir=data_dir))
    except KeyboardInterrupt:
        return
    if not ok:
        raise typer.Exit(1)


@app.command()
def seed(
    size: Annotated[str, typer.Option(help="small | medium | large",
                                      envvar="VELOCITY_SEED_SIZE")] = "small",
    tenant: Annotated[str, typer.Option(help="Tenant id to seed.",
                                        envvar="VELOCITY_SEED_TENANT")] = "acme",
    seed_value: Annotated[int, typer.Option("--seed", help="Random seed.",
                                            envvar="VELOCITY_SEED")] = 7,
    data_dir: Annotated[Path | None, typer.Option(
        help="Embedded PostgreSQL folder when DATABASE_URL is unset.",
        envvar="VELOCITY_DATA_DIR")] = None,
) -> None:
    """Load a deterministic synthetic CRM into the hub (idempotent)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from core.settings import load_settings
    from hub.service import Hub
    from hub.settings import HubSettings
    from seeds.generator import generate
    from seeds.loader import load

    settings = load_settings(HubSettings, **({"data_dir": data_dir} if data_dir else {}))
    data = generate(tenant, size, seed_value)

    async def main() -> int:
        async with Hub(settings) as hub:
            with Progress(TextColumn("seeding"), BarColumn(), MofNCompleteColumn()) as bar:
                task = bar.add_task("seed", total=len(data.records))
                return await load(hub, data, progress=lambda n: bar.advance(task, n))

    typer.echo(f"{asyncio.run(main())} new records loaded into tenant {tenant}")


def _mount() -> None:
    """Attach each package's sub-application; a package missing its extra is left out."""
    from cli.gpu import app as gpu_app
    from edge_agent.cli import app as edge_app
    from hub.cli import app as hub_app

    app.add_typer(edge_app, name="edge", help="The device agent: replica, local API, sync.")
    app.add_typer(hub_app, name="hub", help="The central hub: sync server and CRM API.")
    app.add_typer(gpu_app, name="gpu", help="The GPU box: jobs, progress and the GPU mode.")
    from ios_bridge.cli import app as ios_app

    app.add_typer(ios_app, name="ios", help="The contract with the native iPad app.")
    try:
        from perception.cli import app as sentinel_app
    except ImportError:  # a hub installed without the `kiosk` extra
        return
    app.add_typer(sentinel_app, name="sentinel", help="Sentinel perception on a kiosk.")


_mount()
