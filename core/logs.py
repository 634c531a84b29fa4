"""Process-wide logging: one line per event, as text or JSON (``VELOCITY_LOG_FORMAT``)."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("asyncio", "websockets", "uvicorn.error", "httpx", "httpcore", "absl")
"""Libraries whose info lines are noise to an operator; they log warnings and errors only."""


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VELOCITY_LOG_", extra="ignore")

    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")


class _Extras(logging.Formatter):
    """Text lines that end with the record's ``extra`` fields as ``key=value``."""

    _plain = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{k}={v}" for k, v in vars(record).items() if k not in self._plain]
        return f"{line} {' '.join(extras)}" if extras else line


def configure_logging(settings: LogSettings) -> None:
    """Send every logger's records to stderr in the chosen format (replacing earlier setup)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level",
                                                          "name": "logger"}))
    else:
        handler.setFormatter(_Extras(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
