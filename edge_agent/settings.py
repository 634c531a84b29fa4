"""Edge agent settings from ``VELOCITY_EDGE_…`` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VELOCITY_EDGE_", extra="ignore")

    data_dir: Path = Path("var/edge")
    passphrase: SecretStr | None = None
    """Seals the device's keys (its vault); never stored. From VELOCITY_EDGE_PASSPHRASE."""
    api_host: str = "127.0.0.1"
    api_port: int = Field(8765, ge=0, lt=65536)
    push_batch: int = Field(200, gt=0, le=1000)
    backoff_base_s: float = Field(0.5, gt=0, description="First reconnect delay (before "
                                  "jitter); doubles per failed attempt up to the cap")
    backoff_cap_s: float = Field(60.0, gt=0)
    network_watch_s: float = Field(2.0, ge=0, description="How often to look for a change of "
                                   "the way to the hub (interfaces, source address) and "
                                   "reconnect at once; 0: never")
    push_window: int = Field(8, gt=0, le=64, description="Most push batches awaiting the "
                             "hub's answer at once")
    sentinel: bool | None = Field(None, description="Run Sentinel perception; unset means "
                                  "'when paired as a kiosk'. Its own settings are "
                                  "VELOCITY_SENTINEL_… variables.")

    @property
    def passphrase_value(self) -> str | None:
        return self.passphrase.get_secret_value() if self.passphrase is not None else None
