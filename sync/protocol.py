"""The Velocity sync wire protocol (version 1): binary frames between an edge and the hub.

A frame is ``[version u8][type u8][payload]`` with lib0 encoding inside; see docs/protocol.md.
Decoding is strict: an unknown version or type, a truncated payload, a field over its bound or a
trailing byte is a typed `ProtocolError`, never anything else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeAlias

from core.errors import (
    AuthError,
    Conflict,
    FrameTooLarge,
    MalformedFrame,
    PermissionDenied,
    ProtocolError,
    RecordInvalid,
    Throttled,
    UnsupportedVersion,
    VelocityError,
)
from core.settings import SyncLimits, load_settings
from sync._lib0 import Lib0Reader, Lib0Writer

PROTOCOL_VERSION = 1
MAX_ID_CHARS = 64
MAX_GUID_CHARS = 160
MAX_MESSAGE_CHARS = 1000
NONCE_BYTES = 32


class MessageType(IntEnum):
    HELLO = 1
    CHALLENGE = 2
    AUTH = 3
    WELCOME = 4
    PULL_BATCH = 5
    PUSH_BATCH = 6
    ACK = 7
    REFUSAL = 8
    ERROR = 10


class ItemKind(IntEnum):
    UPDATE = 0
    SNAPSHOT = 1
    """A merged state that replaces the receiver's need for every older update of the doc."""
    REMOVE = 2
    """The document left the receiver's read scope (reassigned away): drop it; data is empty."""


class CloseCode(IntEnum):
    """Websocket close codes, one per error family."""

    NORMAL = 1000
    PROTOCOL = 4000
    AUTH = 4001
    FORBIDDEN = 4003
    TOO_LARGE = 4009
    CONFLICT = 4409
    """The device's identity clashes with another's (a CRDT client id bound to another
    device): retrying cannot help; reinstall to get a fresh client id."""
    THROTTLED = 4029
    UNSUPPORTED_VERSION = 4400
    INTERNAL = 4500


FINAL_CLOSE_CODES = frozenset({CloseCode.FORBIDDEN, CloseCode.CONFLICT,
                               CloseCode.UNSUPPORTED_VERSION})
"""Close codes after which reconnecting as is cannot succeed (a person must act)."""


@dataclass(frozen=True, slots=True)
class Hello:
    """Edge → hub: who I am, where my pull cursor stands, which CRDT client ids I write with."""

    device_id: str
    cursor: int
    client_ids: tuple[int, ...] = ()
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Challenge:
    """Hub → edge: sign this nonce with the device key."""

    nonce: bytes


@dataclass(frozen=True, slots=True)
class Auth:
    signature: bytes


@dataclass(frozen=True, slots=True)
class Welcome:
    """Hub → edge: authenticated; the hub's compaction horizon for this device's scope."""

    tenant_id: str
    user_id: str
    role: str
    horizon: int
    incoming: int = 0
    """Documents the hub is about to send as snapshots (a bootstrap), for a progress bar."""


@dataclass(frozen=True, slots=True)
class PullItem:
    seq: int
    guid: str
    kind: ItemKind
    data: bytes


@dataclass(frozen=True, slots=True)
class PullBatch:
    """Hub → edge: items in sequence order; ``cursor`` is safe to resume from once applied."""

    items: tuple[PullItem, ...]
    cursor: int
    more: bool


@dataclass(frozen=True, slots=True)
class PushItem:
    update_id: str
    guid: str
    data: bytes


@dataclass(frozen=True, slots=True)
class PushBatch:
    items: tuple[PushItem, ...]


@dataclass(frozen=True, slots=True)
class Ack:
    """Hub → edge: these updates are committed, with their sequence (0: already had it)."""

    entries: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Hub → edge: this update is refused for good, with a reason code and a message."""

    update_id: str
    guid: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Error:
    """Either side: a fatal error; the sender closes with ``close_code`` after this."""

    close_code: int
    reason: str
    message: str


Message: TypeAlias = (
    Hello | Challenge | Auth | Welcome | PullBatch | PushBatch | Ack | Refusal | Error
)

# --- encoding -------------------------------------------------------------------------------


def _w_item(w: Lib0Writer, item: PullItem) -> None:
    w.write_var_uint(item.seq)
    w.write_var_string(item.guid)
    w.write_u8(item.kind)
    w.write_var_bytes(item.data)


def _enc_hello(w: Lib0Writer, m: Hello) -> None:
    w.write_var_uint(m.protocol_version)
    w.write_var_string(m.device_id)
    w.write_var_uint(m.cursor)
    w.write_var_uint(len(m.client_ids))
    for cid in m.client_ids:
        w.write_var_uint(cid)


def _enc_pull(w: Lib0Writer, m: PullBatch) -> None:
    w.write_var_uint(m.cursor)
    w.write_u8(1 if m.more else 0)
    w.write_var_uint(len(m.items))
    for item in m.items:
        _w_item(w, item)


def _enc_push(w: Lib0Writer, m: PushBatch) -> None:
    w.write_var_uint(len(m.items))
    for item in m.items:
        w.write_var_string(item.update_id)
        w.write_var_string(item.guid)
        w.write_var_bytes(item.data)


def _enc_ack(w: Lib0Writer, m: Ack) -> None:
    w.write_var_uint(len(m.entries))
    for update_id, seq in m.entries:
        w.write_var_string(update_id)
        w.write_var_uint(seq)


def _enc_strings(*names: str) -> Callable[[Lib0Writer, Message], None]:
    def enc(w: Lib0Writer, m: Message) -> None:
        for name in names:
            value = getattr(m, name)
            if isinstance(value, int):
                w.write_var_uint(value)
            else:
                w.write_var_string(value)

    return enc


_ENCODERS: dict[type, tuple[MessageType, Callable[[Lib0Writer, Any], None]]] = {
    Hello: (MessageType.HELLO, _enc_hello),
    Challenge: (MessageType.CHALLENGE, lambda w, m: w.write_var_bytes(m.nonce)),
    Auth: (MessageType.AUTH, lambda w, m: w.write_var_bytes(m.signature)),
    Welcome: (MessageType.WELCOME, _enc_strings("tenant_id", "user_id", "role", "horizon",
                                                "incoming")),
    PullBatch: (MessageType.PULL_BATCH, _enc_pull),
    PushBatch: (MessageType.PUSH_BATCH, _enc_push),
    Ack: (MessageType.ACK, _enc_ack),
    Refusal: (MessageType.REFUSAL, _enc_strings("update_id", "guid", "reason", "message")),
    Error: (MessageType.ERROR, _enc_strings("close_code", "reason", "message")),
}


def encode(message: Message) -> bytes:
    """Encode one message as a frame."""
    msg_type, enc = _ENCODERS[type(message)]
    w = Lib0Writer()
    w.write_u8(PROTOCOL_VERSION)
    w.write_u8(msg_type)
    enc(w, message)
    return w.to_bytes()


# --- decoding -------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, data: bytes, limits: SyncLimits) -> None:
        self.r = Lib0Reader(data)
        self.limits = limits

    def string(self, limit: int, what: str, *, allow_empty: bool = False) -> str:
        """A string of at most ``limit`` characters (``too_large``) without NUL (PostgreSQL
        text cannot hold it: ``malformed``)."""
        length = self.r.read_var_uint()
        if length > limit * 4:  # more bytes than ``limit`` characters can take in UTF-8
            raise FrameTooLarge(f"{what} longer than {limit} characters")
        raw = self.r.read_bytes(length)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedFrame(f"{what} is not valid UTF-8") from None
        if len(value) > limit:
            raise FrameTooLarge(f"{what} longer than {limit} characters")
        if not value and not allow_empty:
            raise MalformedFrame(f"{what} is empty")
        if "\x00" in value:
            raise MalformedFrame(f"{what} holds a NUL character")
        return value

    def count(self, what: str) -> int:
        n = self.r.read_var_uint()
        if n > self.limits.max_batch_items:
            raise FrameTooLarge(f"{what}: {n} items exceeds {self.limits.max_batch_items}")
        return n

    def blob(self, limit: int, what: str) -> bytes:
        try:
            return self.r.read_var_bytes(limit)
        except MalformedFrame as exc:
            if "exceeds limit" in str(exc):
                raise FrameTooLarge(f"{what} exceeds {limit} bytes") from None
            raise

    def item(self) -> PullItem:
        seq = self.r.read_var_uint()
        guid = self.string(MAX_GUID_CHARS, "guid")
        kind_raw = self.r.read_u8()
        try:
            kind = ItemKind(kind_raw)
        except ValueError:
            raise MalformedFrame(f"unknown item kind {kind_raw}") from None
        data = self.blob(self.limits.max_update_bytes, "update")
        return PullItem(seq, guid, kind, data)

    def hello(self) -> Hello:
        version = self.r.read_var_uint()
        if version != PROTOCOL_VERSION:
            raise UnsupportedVersion(
                f"protocol version {version} is not supported (this hub speaks "
                f"{PROTOCOL_VERSION}); update the app"
            )
        device_id = self.string(MAX_ID_CHARS, "device id")
        cursor = self.r.read_var_uint()
        n = self.r.read_var_uint()
        if n > 64:
            raise FrameTooLarge("more than 64 client ids in hello")
        return Hello(device_id, cursor, tuple(self.r.read_var_uint() for _ in range(n)), version)

    def challenge(self) -> Challenge:
        nonce = self.blob(NONCE_BYTES, "nonce")
        if len(nonce) != NONCE_BYTES:
            raise MalformedFrame(f"nonce must be {NONCE_BYTES} bytes")
        return Challenge(nonce)

    def auth(self) -> Auth:
        return Auth(self.blob(128, "signature"))

    def welcome(self) -> Welcome:
        return Welcome(
            self.string(MAX_ID_CHARS, "tenant id"),
            self.string(MAX_ID_CHARS, "user id"),
            self.string(MAX_ID_CHARS, "role"),
            self.r.read_var_uint(),
            self.r.read_var_uint(),
        )

    def pull_batch(self) -> PullBatch:
        cursor = self.r.read_var_uint()
        more = self.r.read_u8()
        if more > 1:
            raise MalformedFrame("'more' flag must be 0 or 1")
        items = tuple(self.item() for _ in range(self.count("pull batch")))
        return PullBatch(items, cursor, bool(more))

    def push_batch(self) -> PushBatch:
        items = []
        for _ in range(self.count("push batch")):
            update_id = self.string(MAX_ID_CHARS, "update id")
            guid = self.string(MAX_GUID_CHARS, "guid")
            data = self.blob(self.limits.max_update_bytes, "update")
            items.append(PushItem(update_id, guid, data))
        return PushBatch(tuple(items))

    def ack(self) -> Ack:
        n = self.count("ack")
        return Ack(tuple((self.string(MAX_ID_CHARS, "update id"), self.r.read_var_uint())
                         for _ in range(n)))

    def refusal(self) -> Refusal:
        return Refusal(
            self.string(MAX_ID_CHARS, "update id"),
            self.string(MAX_GUID_CHARS, "guid"),
            self.string(MAX_ID_CHARS, "reason"),
            self.string(MAX_MESSAGE_CHARS, "message", allow_empty=True),
        )

    def error(self) -> Error:
        return Error(
            self.r.read_var_uint(),
            self.string(MAX_ID_CHARS, "reason"),
            self.string(MAX_MESSAGE_CHARS, "message", allow_empty=True),
        )


_DECODERS: dict[MessageType, Callable[[_Decoder], Message]] = {
    MessageType.HELLO: _Decoder.hello,
    MessageType.CHALLENGE: _Decoder.challenge,
    MessageType.AUTH: _Decoder.auth,
    MessageType.WELCOME: _Decoder.welcome,
    MessageType.PULL_BATCH: _Decoder.pull_batch,
    MessageType.PUSH_BATCH: _Decoder.push_batch,
    MessageType.ACK: _Decoder.ack,
    MessageType.REFUSAL: _Decoder.refusal,
    MessageType.ERROR: _Decoder.error,
}


@functools.cache
def default_limits() -> SyncLimits:
    """The limits from the environment, read once per process: building settings costs more
    than decoding a frame, and a device decodes every frame it pulls."""
    return load_settings(SyncLimits)


def decode(frame: bytes, limits: SyncLimits | None = None) -> Message:
    """Decode one frame (``limits``: `default_limits()` unless given); any defect is a
    `ProtocolError` subclass."""
    limits = limits or default_limits()
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise MalformedFrame("frames must be binary")
    frame = bytes(frame)
    if len(frame) > limits.max_frame_bytes:
        raise FrameTooLarge(f"frame of {len(frame)} bytes exceeds {limits.max_frame_bytes}")
    dec = _Decoder(frame, limits)
    version = dec.r.read_u8()
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(f"frame version {version}; this build speaks {PROTOCOL_VERSION}")
    raw_type = dec.r.read_u8()
    try:
        msg_type = MessageType(raw_type)
    except ValueError:
        raise MalformedFrame(f"unknown message type {raw_type}") from None
    message = _DECODERS[msg_type](dec)
    if not dec.r.at_end():
        raise MalformedFrame(f"{dec.r.remaining} trailing bytes after {msg_type.name}")
    return message


RETRYABLE_REASONS = frozenset({
    "worker_timeout", "pool_unavailable", "pool_closed", "overloaded", "unavailable", "internal",
    "stored_invalid", "waits",
})
"""Refusal reasons that are the hub's own trouble, not the update's: the device pushes the same
change again (under a new update id, since a verdict on an id is final), never drops it."""
DEPENDENT_REASONS = frozenset({"gap", "causality", "delete_unknown"})
"""Refusal reasons of an update that continues an earlier one the hub does not hold yet: when
that earlier update is still waiting on the device, the later one is pushed again after it."""


def close_code_for(error: VelocityError) -> CloseCode:
    """The websocket close code for an error (the one place this mapping lives)."""
    if isinstance(error, Throttled):
        return CloseCode.THROTTLED
    if isinstance(error, UnsupportedVersion):
        return CloseCode.UNSUPPORTED_VERSION
    if isinstance(error, FrameTooLarge):
        return CloseCode.TOO_LARGE
    if isinstance(error, PermissionDenied):
        return CloseCode.FORBIDDEN
    if isinstance(error, AuthError):
        return CloseCode.AUTH
    if isinstance(error, Conflict):
        return CloseCode.CONFLICT
    if isinstance(error, ProtocolError | RecordInvalid):
        return CloseCode.PROTOCOL
    return CloseCode.INTERNAL
