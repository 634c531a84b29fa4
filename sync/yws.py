"""The y-websocket wire protocol (y-protocols' sync, awareness and auth messages), strictly.

Every frame is one message: ``type:varuint`` then its payload. Sync: ``0, subtype, bytes`` with
subtype 0 (step 1: a state vector), 1 (step 2: an update), 2 (update). Awareness: ``1, bytes``
where the bytes hold ``count`` entries of ``client:varuint, clock:varuint, state:JSON string``.
Auth: ``2, 0, reason`` (permission denied). Query awareness: ``3``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from core.errors import MalformedFrame
from sync._lib0 import Lib0Reader, Lib0Writer

MAX_AWARENESS_STATE_BYTES = 16 * 1024
MAX_AWARENESS_ENTRIES = 64


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncStep(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


@dataclass(frozen=True, slots=True)
class Sync:
    step: SyncStep
    data: bytes
    """A state vector (step 1) or an update (step 2, update)."""


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str
    """The state as JSON text (``null``: the client left)."""


@dataclass(frozen=True, slots=True)
class Awareness:
    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


Message = Sync | Awareness | QueryAwareness


def decode(frame: bytes, max_update_bytes: int) -> Message:
    """Decode one client frame; anything but a complete, bounded message is `MalformedFrame`."""
    reader = Lib0Reader(frame)
    kind = reader.read_var_uint()
    message: Message
    if kind == MessageType.SYNC:
        step = reader.read_var_uint()
        try:
            sync_step = SyncStep(step)
        except ValueError:
            raise MalformedFrame(f"unknown y-websocket sync step {step}") from None
        message = Sync(sync_step, reader.read_var_bytes(max_update_bytes))
    elif kind == MessageType.AWARENESS:
        message = _decode_awareness(reader.read_var_bytes(
            MAX_AWARENESS_ENTRIES * (MAX_AWARENESS_STATE_BYTES + 32)))
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwareness()
    else:
        raise MalformedFrame(f"unexpected y-websocket message type {kind}")
    if not reader.at_end():
        raise MalformedFrame("trailing bytes after a y-websocket message")
    return message


def _decode_awareness(data: bytes) -> Awareness:
    reader = Lib0Reader(data)
    count = reader.read_var_uint()
    if count > MAX_AWARENESS_ENTRIES:
        raise MalformedFrame(f"awareness update of {count} clients exceeds "
                             f"{MAX_AWARENESS_ENTRIES}")
    entries = []
    for _ in range(count):
        client, clock = reader.read_var_uint(), reader.read_var_uint()
        state = reader.read_var_string(MAX_AWARENESS_STATE_BYTES)
        try:
            json.loads(state)
        except ValueError:
            raise MalformedFrame("awareness state is not JSON") from None
        entries.append(AwarenessEntry(client, clock, state))
    if not reader.at_end():
        raise MalformedFrame("trailing bytes in an awareness update")
    return Awareness(tuple(entries))


def encode_sync(step: SyncStep, data: bytes) -> bytes:
    w = Lib0Writer()
    w.write_var_uint(MessageType.SYNC)
    w.write_var_uint(step)
    w.write_var_bytes(data)
    return w.to_bytes()


def encode_awareness(entries: tuple[AwarenessEntry, ...] | list[AwarenessEntry]) -> bytes:
    inner = Lib0Writer()
    inner.write_var_uint(len(entries))
    for e in entries:
        inner.write_var_uint(e.client_id)
        inner.write_var_uint(e.clock)
        inner.write_var_string(e.state)
    w = Lib0Writer()
    w.write_var_uint(MessageType.AWARENESS)
    w.write_var_bytes(inner.to_bytes())
    return w.to_bytes()


def encode_permission_denied(reason: str) -> bytes:
    """y-protocols' auth message: the client's provider reports the reason and stops."""
    w = Lib0Writer()
    w.write_var_uint(MessageType.AUTH)
    w.write_var_uint(0)
    w.write_var_string(reason)
    return w.to_bytes()
