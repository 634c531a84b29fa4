"""Operator logs: one line per event, text with key=value extras or JSON, libraries quiet."""

from __future__ import annotations

import json
import logging

import pytest

from core.logs import LogSettings, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("websockets", "asyncio"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_text_lines_carry_extras(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(format="text", level="INFO"))
    logging.getLogger("hub.sync").info("session closed", extra={"device": "d1", "code": 4401})
    logging.getLogger("websockets").info("library chatter")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("INFO hub.sync: session closed device=d1 code=4401")


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(format="json", level="WARNING"))
    logging.getLogger("hub.sync").info("below the level")
    logging.getLogger("sync.sandbox").warning("sandbox worker retired", extra={"pid": 42})
    (line,) = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["message"] == "sandbox worker retired" and event["pid"] == 42
    assert event["level"] == "WARNING" and event["logger"] == "sync.sandbox"
