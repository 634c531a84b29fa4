"""Operator logs: one line per event, text with key=value extras or JSON, libraries quiet."""

from __future__ import annotations

import asyncio
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


@pytest.mark.anyio
async def test_a_session_logs_its_refusal_and_a_dropped_device_without_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    from schema import collection
    from sync import protocol as p
    from sync.record import RecordDoc
    from tests.hubkit import pair_device, running_hub

    caplog.set_level(logging.INFO)
    async with running_hub() as server:
        device = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 903)
        await device.connect()
        other = RecordDoc(collection("people"), "logs-other", client_id=903)
        await device.push([p.PushItem("u-bad", other.guid, other.write(
            {"tenant_id": "t2", "full_name": "Not yours"}))])
        await device.wait_for(lambda: "u-bad" in device.refusals)
        assert device.ws is not None
        device.ws.transport.abort()  # the device vanishes mid-session: no close frame
        await device.close()
        for _ in range(200):
            if any(r.getMessage() == "sync session closed" for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    events = {r.getMessage(): r for r in caplog.records if r.name == "hub.sync_endpoint"}
    refused, closed = events["update refused"], events["sync session closed"]
    assert (refused.device, refused.update, refused.reason) == (
        device.device_id, "u-bad", device.refusals["u-bad"].reason)
    assert (closed.device, closed.reason) == (device.device_id, "disconnected")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


@pytest.mark.anyio
async def test_fan_out_lag_is_a_line_when_behind_and_one_when_caught_up(
        caplog: pytest.LogCaptureFixture) -> None:
    from schema import collection
    from sync import protocol as p
    from sync.record import RecordDoc
    from tests.hubkit import pair_device, running_hub

    caplog.set_level(logging.INFO)
    async with running_hub(pull_batch=2) as server:  # a page of two: six commits are lag
        reader = await pair_device(server, "sales_director@t1.test", "t1-sales_director", 904)
        writer = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 905)
        await reader.connect()
        await reader.wait_for(lambda: reader.batches >= 1)  # caught up: live from here
        await writer.connect()
        docs = [RecordDoc(collection("people"), f"lag-{n}", client_id=905) for n in range(6)]
        await writer.push([p.PushItem(f"lag{n}", doc.guid, doc.write(
            {"tenant_id": "t1", "full_name": f"Visitor {n}"})) for n, doc in enumerate(docs)])
        await writer.wait_for(lambda: len(writer.acks) == 6)
        await reader.wait_for(lambda: {d.guid for d in docs} <= set(reader.docs))
        for _ in range(200):
            if any(r.getMessage() == "sync session caught up" for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        await reader.close()  # offline while six more commit: catching up after is not lag
        more = [RecordDoc(collection("people"), f"lag-{n}", client_id=905) for n in range(6, 12)]
        await writer.push([p.PushItem(f"lag{n}", doc.guid, doc.write(
            {"tenant_id": "t1", "full_name": f"Visitor {n}"})) for n, doc in enumerate(more, 6)])
        await writer.wait_for(lambda: len(writer.acks) == 12)
        await reader.connect()
        await reader.wait_for(lambda: {d.guid for d in more} <= set(reader.docs))
        for device in (reader, writer):
            await device.close()
    lag = [r for r in caplog.records if r.getMessage() in (
        "sync session behind", "sync session caught up") and r.device == reader.device_id]
    assert [r.getMessage() for r in lag] == ["sync session behind", "sync session caught up"]
    assert lag[0].behind > 2 and lag[1].seconds >= 0
