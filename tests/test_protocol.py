"""The wire protocol: every message round-trips; every malformed frame is a typed error."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import FrameTooLarge, MalformedFrame, ProtocolError, UnsupportedVersion
from core.settings import SyncLimits
from sync import protocol as p

chars = st.characters(codec="utf-8", exclude_characters="\x00")
ids = st.text(chars, min_size=1, max_size=p.MAX_ID_CHARS)
guids = st.text(chars, min_size=1, max_size=p.MAX_GUID_CHARS)
msgs = st.text(chars, max_size=200)
u53 = st.integers(0, (1 << 53) - 1)
blobs = st.binary(max_size=300)
items = st.builds(p.PullItem, u53, guids, st.sampled_from(p.ItemKind), blobs)

messages = st.one_of(
    st.builds(p.Hello, ids, u53, st.lists(u53, max_size=5).map(tuple)),
    st.builds(p.Challenge, st.binary(min_size=32, max_size=32)),
    st.builds(p.Auth, st.binary(max_size=128)),
    st.builds(p.Welcome, ids, ids, ids, u53),
    st.builds(p.PullBatch, st.lists(items, max_size=5).map(tuple), u53, st.booleans()),
    st.builds(p.PushBatch, st.lists(st.builds(p.PushItem, ids, guids, blobs), max_size=5)
              .map(tuple)),
    st.builds(p.Ack, st.lists(st.tuples(ids, u53), max_size=5).map(tuple)),
    st.builds(p.Refusal, ids, guids, ids, msgs),
    st.builds(p.Error, st.integers(1000, 4999), ids, msgs),
)


@given(messages)
def test_every_message_round_trips(message: p.Message) -> None:
    assert p.decode(p.encode(message)) == message


@given(messages, st.data())
def test_mutated_frames_decode_or_raise_protocol_error(
    message: p.Message, data: st.DataObject
) -> None:
    frame = bytearray(p.encode(message))
    op = data.draw(st.sampled_from(["flip", "truncate", "insert", "append"]))
    pos = data.draw(st.integers(0, len(frame)))
    if op == "flip" and pos < len(frame):
        frame[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "truncate":
        frame = frame[:pos]
    elif op == "insert":
        frame[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        frame += data.draw(st.binary(min_size=1, max_size=8))
    with contextlib.suppress(ProtocolError):
        p.decode(bytes(frame))


@given(st.binary(max_size=256))
def test_random_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        p.decode(frame)


def test_trailing_bytes_are_refused() -> None:
    frame = p.encode(p.Auth(b"sig")) + b"\x00"
    with pytest.raises(MalformedFrame, match="trailing"):
        p.decode(frame)


def test_unknown_version_and_type() -> None:
    with pytest.raises(UnsupportedVersion):
        p.decode(b"\x09\x01")
    with pytest.raises(MalformedFrame, match="unknown message type"):
        p.decode(b"\x01\x63")
    hello = p.encode(p.Hello("dev", 0))
    with pytest.raises(UnsupportedVersion, match="update the app"):
        p.decode(hello[:2] + b"\x07" + hello[3:])


def test_bounds_are_enforced() -> None:
    limits = SyncLimits(max_frame_bytes=64, max_batch_items=2, max_update_bytes=8)
    with pytest.raises(FrameTooLarge):
        p.decode(p.encode(p.Auth(b"x" * 100)), limits)
    three = p.PushBatch(tuple(p.PushItem(f"u{i}", "people/x", b"") for i in range(3)))
    with pytest.raises(FrameTooLarge, match="push batch"):
        p.decode(p.encode(three), limits)
    big = p.PushBatch((p.PushItem("u", "people/x", b"x" * 9),))
    with pytest.raises(FrameTooLarge, match="update"):
        p.decode(p.encode(big), limits)
    with pytest.raises(MalformedFrame, match="53 bits"):
        p.decode(b"\x01\x07\x01\x01u" + b"\xff" * 9 + b"\x01")


@pytest.mark.parametrize("message", [
    p.Hello("dev\x00ice", 0),
    p.PushBatch((p.PushItem("u\x00", "people/x", b"\x00\x00"),)),
    p.PushBatch((p.PushItem("u", "people/x\x00", b"\x00\x00"),)),
], ids=["device id", "update id", "guid"])
def test_a_nul_character_in_any_string_is_malformed(message: p.Message) -> None:
    """PostgreSQL text cannot hold NUL: refused while decoding, before any query sees it."""
    with pytest.raises(MalformedFrame, match="NUL"):
        p.decode(p.encode(message))


def test_a_string_longer_than_its_bound_is_too_large_whatever_its_bytes() -> None:
    """300 characters of ASCII (300 bytes) and 65 four-byte characters are both too large."""
    for device_id in ("d" * 300, "😀" * 65, "d" * 65):
        with pytest.raises(FrameTooLarge, match="device id longer than 64"):
            p.decode(p.encode(p.Hello(device_id, 0)))


def test_close_codes_map_by_family() -> None:
    assert p.close_code_for(FrameTooLarge("x")) is p.CloseCode.TOO_LARGE
    assert p.close_code_for(MalformedFrame("x")) is p.CloseCode.PROTOCOL
    assert p.close_code_for(UnsupportedVersion("x")) is p.CloseCode.UNSUPPORTED_VERSION


def test_default_limits_come_from_the_environment_once_per_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    frame = p.encode(p.Ack(tuple((f"u{n}", n) for n in range(100))))
    p.default_limits.cache_clear()
    monkeypatch.setenv("VELOCITY_MAX_FRAME_BYTES", str(len(frame) - 1))
    try:
        with pytest.raises(FrameTooLarge):
            p.decode(frame)
        monkeypatch.setenv("VELOCITY_MAX_FRAME_BYTES", str(len(frame)))
        with pytest.raises(FrameTooLarge):  # read once: a device decodes every frame it pulls
            p.decode(frame)
        p.default_limits.cache_clear()  # a new process reads the new value
        assert p.decode(frame) == p.Ack(tuple((f"u{n}", n) for n in range(100)))
    finally:
        p.default_limits.cache_clear()
