"""GPU front settings from environment variables (``VELOCITY_…``; ``COMFYUI_URLS`` as the
owner named it); a bad value names its variable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
"""An SGLang/OpenAI model id: no ``name:tag`` forms (those are another runtime's)."""


def check_model_id(model: str) -> str:
    """``model`` when it is a valid model id; a `ValueError` naming the rule otherwise."""
    if ":" in model:
        raise ValueError(f"model id {model!r} has a ':tag'; use the served id, "
                         "e.g. qwen3.6-35b-a3b")
    if not MODEL_ID.match(model):
        raise ValueError(f"model id {model!r} must be letters, digits, '.', '_', '-' or '/'")
    return model


class GpuSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VELOCITY_", extra="ignore")

    llm_base_url: str | None = None
    """OpenAI-compatible base URL (SGLang: ``http://gpu-box:30000/v1``); unset: no LLM."""
    llm_api_key: str = "none"
    llm_model: str = "qwen3.6-35b-a3b"
    llm_timeout_s: float = Field(120.0, gt=0)
    llm_retries: int = Field(3, ge=0, le=10)
    """Retries on transient errors (connection, timeout, 408/429/5xx), with backoff."""
    llm_backoff_s: float = Field(0.5, ge=0)
    llm_tenant_concurrency: int = Field(4, ge=1, le=256)
    """LLM calls one tenant may have in flight at once; the rest wait their turn."""
    oracle_row_limit: int = Field(500, ge=1, le=10_000)
    oracle_statement_timeout_ms: int = Field(5000, ge=10, le=600_000)
    comfyui_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("COMFYUI_URLS", "comfyui_urls"))
    """One ComfyUI base URL per worker (one worker per GPU), comma-separated."""
    asset_dir: Path = Path("var/assets")
    """Where generated images are stored and served from."""
    dream_weaver_max_bytes: int = Field(20 * 1024 * 1024, gt=0)
    dream_weaver_checkpoint: str = "sd_xl_base_1.0.safetensors"
    dream_weaver_slots: int = Field(4, ge=1, le=64)
    """Dream Weaver jobs one hub runs at once (one per ComfyUI worker is the natural fit)."""
    comfy_timeout_s: float = Field(600.0, gt=0)
    """A job with no progress for this long is taken as hung and run on another worker."""
    comfy_health_interval_s: float = Field(5.0, gt=0)
    comfy_attempts: int = Field(3, ge=1, le=10)
    gpu_mode: str = Field("split", pattern="^(llm|media|split)$")

    @field_validator("llm_model")
    @classmethod
    def _model(cls, value: str) -> str:
        return check_model_id(value)

    @field_validator("comfyui_urls", mode="before")
    @classmethod
    def _urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
        return value
