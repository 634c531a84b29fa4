"""Typed settings from ``VELOCITY_…`` environment variables; a bad value names its variable."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError


class SyncLimits(BaseSettings):
    """Bounds applied to every frame and CRDT update that crosses a trust boundary."""

    model_config = SettingsConfigDict(env_prefix="VELOCITY_", extra="ignore")

    max_frame_bytes: int = Field(4 * 1024 * 1024, gt=0)
    max_update_bytes: int = Field(1024 * 1024, gt=0)
    max_batch_items: int = Field(1000, gt=0)
    max_structs_per_update: int = Field(20_000, gt=0)
    max_structs_per_key: int = Field(2_000, gt=0)
    max_nesting_depth: int = Field(16, gt=0)
    max_clients_per_update: int = Field(256, gt=0)
    max_string_bytes: int = Field(256 * 1024, gt=0)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings object, turning pydantic's error into a `ConfigError` naming the key."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"{prefix}{key.upper()}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
