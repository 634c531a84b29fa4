"""The token-signing secret: supplied by the operator, or generated once and kept in the database
sealed with a key file that lives with the hub's operator account, not in the database."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.errors import ConfigError
from hub.storage.settings import SettingsStore

SEALED_ROW = "secret_key_sealed"
PLAIN_ROW = "secret_key"
"""Where hubs before sealing kept the secret in plain text; moved to the sealed row at start."""


def seal_key(path: Path) -> Fernet:
    """The sealing key in ``path``, made on first use (file 0600, new folders 0700); hubs
    starting together agree on one (the first link wins)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return Fernet(path.read_bytes().strip())


async def signing_secret(settings: SettingsStore, seal_file: Path) -> str:
    """The secret every hub on this database signs tokens with: read through the seal, or made
    now (a plain-text secret of an older hub is sealed and its row deleted)."""
    seal = seal_key(seal_file)
    sealed = await settings.sealed_secret(
        SEALED_ROW, PLAIN_ROW,
        lambda plain: seal.encrypt((plain or secrets.token_urlsafe(48)).encode()).decode())
    try:
        return seal.decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise ConfigError(
            "the token-signing secret in the database was sealed with another key than "
            f"{seal_file}: copy that file from the first hub (or point VELOCITY_TOKEN_SEAL_FILE"
            " at it), or set VELOCITY_SECRET_KEY on every hub") from None
