"""Hub settings from ``VELOCITY_…`` variables (every CLI flag of `velocity hub` has one)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VELOCITY_", extra="ignore")

    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    data_dir: Path = Path("var/hub")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, lt=65536)
    """0 picks any free port."""
    metrics_token: str | None = None
    """Bearer token a Prometheus scraper sends to ``/metrics``; unset: loopback scrapers only."""
    secret_key: str | None = None
    """Signs login tokens; when unset, one is generated once and kept in the database sealed
    with the key in ``token_seal_file`` (see docs/security.md)."""
    token_seal_file: Path = Path.home() / ".config" / "velocity" / "token-seal.key"
    """The key that seals the generated token secret in the database (made on first use, 0600);
    every hub on one database needs the same file, or a shared ``VELOCITY_SECRET_KEY``."""
    token_ttl_s: int = Field(15 * 60, gt=0)
    """Lifetime of an access token; a refresh token gets a new one."""
    refresh_ttl_s: int = Field(14 * 24 * 3600, gt=0)
    login_failures_per_account: int = Field(5, gt=0)
    """Failed logins of one account within the window after which it is refused (429)."""
    login_failures_per_address: int = Field(30, gt=0)
    """Failed logins from one source address within the window after which it is refused."""
    login_window_s: int = Field(15 * 60, gt=0)
    sandbox_workers: int = Field(2, ge=1, le=32)
    sandbox_timeout_s: float = Field(2.0, gt=0)
    pull_batch: int = Field(1000, gt=0, le=5000)
    """Documents or updates read per page; pages are split into frames within the devices'
    `VELOCITY_MAX_FRAME_BYTES` and `VELOCITY_MAX_BATCH_ITEMS`."""
    pairing_code_ttl_s: int = Field(3600, gt=0)
    max_offences: int = Field(5, gt=0)
    """Refused hostile updates after which a device is blocked (an admin sees why)."""
    throttle_after: int = Field(2, gt=0)
    """Refused unsafe updates after which a device may push at most once per interval."""
    throttle_interval_s: float = Field(2.0, ge=0)
    merge_pull: bool = True
    """A live session sends the updates of one document it reads together as one merged
    update (one item); off: one item per logged update."""
    push_window: int = Field(4, ge=1, le=64)
    """Push batches of one device the hub holds unanswered (one judged, the rest waiting); it
    reads no further batch of that device until one is answered (backpressure)."""
    gate_documents: int = Field(16384, ge=0)
    """Documents the gate keeps as it judged them, for their next push (about 13 KiB each
    for a lead with a few edits, so ``gate_memory_mb`` is what bounds it; 0 turns it off)."""
    gate_memory_mb: int = Field(256, ge=1)
    """About how much memory the documents the gate keeps may take (least recently used go
    first); their sandbox workers keep copies within a bound of their own."""
