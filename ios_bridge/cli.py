"""`velocity ios …`: export the contract, the golden vectors, Swift models, a pairing QR code."""

from __future__ import annotations

import time
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
    hub_url: Annotated[str, typer.Option(help="The hub's URL as the iPad reaches it.",
                                         envvar="VELOCITY_HUB_URL")],
    code: Annotated[str, typer.Option(help="A pairing code an admin issued.",
                                      envvar="VELOCITY_PAIRING_CODE")],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.",
                                      envvar="VELOCITY_PAIRING_QR")] = Path("pairing.png"),
    key_file: Annotated[Path, typer.Option(help="The hub's identity key, created on first use.",
                                           envvar="VELOCITY_HUB_KEY_FILE")
                        ] = Path("var/hub/hub_identity.key"),
    expires_in: Annotated[int, typer.Option(min=60, max=7 * 24 * 3600,
                                            help="Seconds the payload stays valid (match the "
                                            "code's own expiry).",
                                            envvar="VELOCITY_PAIRING_TTL_S")] = 3600,
) -> None:
    """Sign a pairing payload with the hub's key and render it as a QR code PNG."""
    from core.errors import VelocityError
    from ios_bridge.pairing import load_or_create_hub_key, render_qr_png, sign_payload

    if not hub_url.startswith(("http://", "https://")):
        raise typer.BadParameter("the hub URL starts with http:// or https://",
                                 param_hint="--hub-url")
    try:
        key = load_or_create_hub_key(key_file)
    except VelocityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    payload = sign_payload(key, hub_url, code, int(time.time()) + expires_in)
    render_qr_png(payload, out)
    typer.echo(f"{out}: hub key {payload.fingerprint}, valid for {expires_in} s")
