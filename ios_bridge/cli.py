"""`velocity ios …`: export the contract, the golden vectors, Swift models, a pairing QR code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="The contract with the native iPad app.")

OutOpt = Annotated[Path, typer.Option("--out", help="Folder to write into.",
                                      envvar="VELOCITY_IOS_OUT")]


@app.command()
def export(out: OutOpt) -> None:
    """Write JSON Schemas, the frame layout and the golden vectors under OUT/v<version>/."""
    from ios_bridge.contract import export as run
    from sync.protocol import PROTOCOL_VERSION

    files = run(out)
    typer.echo(f"{len(files)} files written under {out / f'v{PROTOCOL_VERSION}'}")


@app.command()
def vectors(out: OutOpt) -> None:
    """Write the golden vectors (frames and CRDT updates) into OUT."""
    from ios_bridge.vectors import write

    for path in write(out):
        typer.echo(str(path))


@app.command()
def swift(out: OutOpt) -> None:
    """Generate the Swift Codable models (VelocityContract.swift) into OUT."""
    from ios_bridge.swift import write

    typer.echo(str(write(out)))


@app.command("pairing-qr")
def pairing_qr(
    hub_url: Annotated[str, typer.Option(help="The hub's URL, as this computer reaches it.",
                                         envvar="VELOCITY_HUB_URL")],
    user: Annotated[str, typer.Option(help="Id of the user the device will belong to.",
                                      envvar="VELOCITY_PAIRING_USER")],
    email: Annotated[str, typer.Option(help="Email of an ADMIN or SALES_DIRECTOR.",
                                       envvar="VELOCITY_ADMIN_EMAIL")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          help="That person's password.",
                                          envvar="VELOCITY_ADMIN_PASSWORD")],
    kind: Annotated[str, typer.Option(help="ipad, kiosk or desktop.",
                                      envvar="VELOCITY_PAIRING_KIND")] = "ipad",
    device_hub_url: Annotated[str | None, typer.Option(
        help="The hub's URL as the device reaches it (default: --hub-url).",
        envvar="VELOCITY_DEVICE_HUB_URL")] = None,
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.",
                                      envvar="VELOCITY_PAIRING_QR")] = Path("pairing.png"),
) -> None:
    """Issue a pairing code on the hub, signed by its key, and save it as a QR code PNG."""
    from core.errors import VelocityError
    from ios_bridge.pairing import fetch_pairing_payload, qr_png

    try:
        payload = fetch_pairing_payload(hub_url, email, password, user, kind,
                                        device_hub_url or hub_url)
    except VelocityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    out.write_bytes(qr_png(payload))
    typer.echo(f"{out}: code {payload.code} for {user}, hub key {payload.fingerprint}, "
               f"valid until {payload.expires_at} (Unix time)")
