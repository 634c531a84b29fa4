"""`velocity hub …`: run the hub and administer it from a terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core.errors import VelocityError
from core.identity import Principal, Role
from core.settings import load_settings
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings

app = typer.Typer(help="The central hub: PostgreSQL sync server and CRM API.")
console = Console()

HostOpt = Annotated[str | None, typer.Option(help="Listen address.", envvar="VELOCITY_HOST")]
PortOpt = Annotated[int | None, typer.Option(help="Listen port (0: any free port, printed).",
                                             envvar="VELOCITY_PORT")]
DataOpt = Annotated[Path | None, typer.Option(
    help="Folder of the embedded PostgreSQL when DATABASE_URL is unset.",
    envvar="VELOCITY_DATA_DIR")]


def _settings(host: str | None, port: int | None, data_dir: Path | None) -> HubSettings:
    overrides = {k: v for k, v in (("host", host), ("port", port), ("data_dir", data_dir))
                 if v is not None}
    return load_settings(HubSettings, **overrides)


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context, host: HostOpt = None, port: PortOpt = None,
         data_dir: DataOpt = None) -> None:
    """Run the hub until Ctrl-C (embedded PostgreSQL unless DATABASE_URL is set)."""
    if ctx.invoked_subcommand is None:
        serve(host, port, data_dir)


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None, data_dir: DataOpt = None) -> None:
    """Run the hub until Ctrl-C (embedded PostgreSQL unless DATABASE_URL is set)."""
    settings = _settings(host, port, data_dir)

    async def run() -> None:
        async with HubServer(Hub(settings)) as server:
            console.print(f"[green]hub listening[/] on {server.url}  (API docs: {server.url}/docs,"
                          f" sync: {server.sync_url})")
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        console.print("hub stopped")


@app.command("create-user")
def create_user(
    tenant: Annotated[str, typer.Argument(help="Tenant id (created when new).")],
    email: Annotated[str, typer.Argument()],
    role: Annotated[Role, typer.Option(help="Role of the new user.",
                                       envvar="VELOCITY_USER_ROLE")] = Role.JUNIOR_BROKER,
    name: Annotated[str, typer.Option(help="Full name.", envvar="VELOCITY_USER_NAME")] = "",
    team: Annotated[str | None, typer.Option(help="Team id.", envvar="VELOCITY_USER_TEAM")
                    ] = None,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True,
                                          help="Asked for when not given.",
                                          envvar="VELOCITY_USER_PASSWORD")] = "",
    data_dir: DataOpt = None,
) -> None:
    """Create a user (and the tenant if it does not exist yet)."""
    settings = _settings(None, None, data_dir)

    async def run() -> None:
        async with Hub(settings) as hub:
            await hub.accounts.ensure_tenant(tenant, tenant)
            user = await hub.accounts.create_user(tenant, email, password, role,
                                                  name or email, team_id=team)
            console.print(f"user {user.email} ({user.role.value}) id {user.user_id}")

    asyncio.run(run())


TenantArg = Annotated[str, typer.Argument(help="Tenant id.")]
EmailArg = Annotated[str, typer.Argument(help="The user's email.")]


def _as_operator(data_dir: Path | None, tenant: str, email: str,
                 act: Callable[[Hub, Principal, str], Awaitable[str]]) -> None:
    """Run ``act`` on a started hub as the terminal's operator (an admin of ``tenant``)."""
    settings = _settings(None, None, data_dir)
    operator = Principal(tenant, "terminal-operator", Role.ADMIN)

    async def run() -> str:
        async with Hub(settings) as hub:
            return await act(hub, operator, await hub.accounts.user_id_of(tenant, email))

    try:
        console.print(asyncio.run(run()))
    except VelocityError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from None


@app.command("disable-user")
def disable_user(tenant: TenantArg, email: EmailArg, data_dir: DataOpt = None) -> None:
    """Disable a user: tokens end, open sync sessions close on every hub, devices are refused."""
    async def act(hub: Hub, op: Principal, user_id: str) -> str:
        await hub.accounts.set_active(op, user_id, False)
        return f"{email} disabled"
    _as_operator(data_dir, tenant, email, act)


@app.command("enable-user")
def enable_user(tenant: TenantArg, email: EmailArg, data_dir: DataOpt = None) -> None:
    """Enable a disabled user again (they log in again; their devices reconnect)."""
    async def act(hub: Hub, op: Principal, user_id: str) -> str:
        await hub.accounts.set_active(op, user_id, True)
        return f"{email} enabled"
    _as_operator(data_dir, tenant, email, act)


@app.command("set-role")
def set_role(
    tenant: TenantArg, email: EmailArg,
    role: Annotated[Role, typer.Argument(help="The new role.", envvar="VELOCITY_USER_ROLE")],
    team: Annotated[str | None, typer.Option(help="A new team id.", envvar="VELOCITY_USER_TEAM")
                    ] = None,
    data_dir: DataOpt = None,
) -> None:
    """Change a user's role (and team): their tokens end and open sync sessions close, on every
    hub; their devices reconnect with the new scope."""
    async def act(hub: Hub, op: Principal, user_id: str) -> str:
        user = await hub.accounts.change(op, user_id, role=role, team_id=team)
        return f"{email} is now {user.role.value} (team {user.team_id or '—'})"
    _as_operator(data_dir, tenant, email, act)


@app.command("reset-password")
def reset_password(
    tenant: TenantArg, email: EmailArg,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True,
                                          help="Asked for when not given.",
                                          envvar="VELOCITY_USER_PASSWORD")] = "",
    data_dir: DataOpt = None,
) -> None:
    """Set a user's password; their tokens end (they log in again)."""
    async def act(hub: Hub, op: Principal, user_id: str) -> str:
        await hub.accounts.reset_password(op, user_id, password)
        return f"password of {email} reset"
    _as_operator(data_dir, tenant, email, act)


@app.command("logout-user")
def logout_user(tenant: TenantArg, email: EmailArg, data_dir: DataOpt = None) -> None:
    """End every access and refresh token of a user (their devices stay paired)."""
    async def act(hub: Hub, op: Principal, user_id: str) -> str:
        await hub.accounts.logout(Principal(tenant, user_id, Role.JUNIOR_BROKER))
        return f"{email} logged out everywhere"
    _as_operator(data_dir, tenant, email, act)


@app.command()
def compact(
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    keep: Annotated[int, typer.Option(help="Newest updates to keep as raw updates.",
                                      envvar="VELOCITY_COMPACT_KEEP")] = 10_000,
    data_dir: DataOpt = None,
) -> None:
    """Drop raw updates older than the newest KEEP; devices behind that get snapshots."""
    settings = _settings(None, None, data_dir)

    async def run() -> None:
        async with Hub(settings) as hub:
            last, _ = await hub.store.high_water(tenant)
            dropped = await hub.store.compact(tenant, max(0, last - keep))
            console.print(f"dropped {dropped} raw updates of tenant {tenant}; horizon "
                          f"{max(0, last - keep)}")

    asyncio.run(run())


@app.command()
def doctor(data_dir: DataOpt = None) -> None:
    """Check the database, migrations, clock, disk and sandbox; say what to fix."""
    from rich.table import Table

    from hub.doctor import run_checks

    checks = asyncio.run(run_checks(_settings(None, None, data_dir)))
    table = Table("check", "", "detail", "what to do")
    for check in checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail,
                      "" if check.ok else check.fix)
    console.print(table)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
