"""The sync protocol's frames as data: each message's fields in wire order, with their bounds.

This table is the exported description of `sync.protocol` that a second implementation codes
against (docs/ios.md). `to_json` turns a decoded message into its JSON form (bytes as lowercase
hex, nested entries as objects); the golden vectors check the table and the encoder agree.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.auth import CHALLENGE_CONTEXT
from sync import protocol as p

Field = dict[str, Any]


def _varuint(name: str) -> Field:
    return {"name": name, "wire": "varuint"}


def _string(name: str, max_chars: int, *, allow_empty: bool = False) -> Field:
    return {"name": name, "wire": "string", "min_chars": 0 if allow_empty else 1,
            "max_chars": max_chars}


def _bytes(name: str, max_bytes: int | str, min_bytes: int = 0) -> Field:
    return {"name": name, "wire": "bytes", "min_bytes": min_bytes, "max_bytes": max_bytes}


def _list(name: str, max_items: int | str, item: Field) -> Field:
    return {"name": name, "wire": "list", "max_items": max_items, "item": item}


def _struct(*fields: Field) -> Field:
    return {"wire": "struct", "fields": list(fields)}


MAX_BATCH = "max_batch_items"
MAX_UPDATE = "max_update_bytes"
"""Bounds named by a limit (see `LIMITS`) rather than a number: a hub may configure them."""

LIMITS = {"max_frame_bytes": 4 * 1024 * 1024, "max_batch_items": 1000,
          "max_update_bytes": 1024 * 1024}
"""The limits' default values (VELOCITY_MAX_FRAME_BYTES, …); a client must accept up to these."""

MESSAGES: dict[p.MessageType, dict[str, Any]] = {
    p.MessageType.HELLO: {"direction": "device_to_hub", "fields": [
        _varuint("protocol_version"), _string("device_id", p.MAX_ID_CHARS), _varuint("cursor"),
        _list("client_ids", 64, {"wire": "varuint"})]},
    p.MessageType.CHALLENGE: {"direction": "hub_to_device", "fields": [
        _bytes("nonce", p.NONCE_BYTES, p.NONCE_BYTES)]},
    p.MessageType.AUTH: {"direction": "device_to_hub", "fields": [_bytes("signature", 128)]},
    p.MessageType.WELCOME: {"direction": "hub_to_device", "fields": [
        _string("tenant_id", p.MAX_ID_CHARS), _string("user_id", p.MAX_ID_CHARS),
        _string("role", p.MAX_ID_CHARS), _varuint("horizon"), _varuint("incoming")]},
    p.MessageType.PULL_BATCH: {"direction": "hub_to_device", "fields": [
        _varuint("cursor"), {"name": "more", "wire": "bool"},
        _list("items", MAX_BATCH, _struct(
            _varuint("seq"), _string("guid", p.MAX_GUID_CHARS),
            {"name": "kind", "wire": "u8", "enum": {k.name.lower(): int(k) for k in p.ItemKind}},
            _bytes("data", MAX_UPDATE)))]},
    p.MessageType.PUSH_BATCH: {"direction": "device_to_hub", "fields": [
        _list("items", MAX_BATCH, _struct(
            _string("update_id", p.MAX_ID_CHARS), _string("guid", p.MAX_GUID_CHARS),
            _bytes("data", MAX_UPDATE)))]},
    p.MessageType.ACK: {"direction": "hub_to_device", "fields": [
        _list("entries", MAX_BATCH, _struct(
            _string("update_id", p.MAX_ID_CHARS), _varuint("seq")))]},
    p.MessageType.REFUSAL: {"direction": "hub_to_device", "fields": [
        _string("update_id", p.MAX_ID_CHARS), _string("guid", p.MAX_GUID_CHARS),
        _string("reason", p.MAX_ID_CHARS),
        _string("message", p.MAX_MESSAGE_CHARS, allow_empty=True)]},
    p.MessageType.ERROR: {"direction": "either", "fields": [
        _varuint("close_code"), _string("reason", p.MAX_ID_CHARS),
        _string("message", p.MAX_MESSAGE_CHARS, allow_empty=True)]},
}

MESSAGE_CLASSES: dict[p.MessageType, type] = {
    p.MessageType.HELLO: p.Hello, p.MessageType.CHALLENGE: p.Challenge,
    p.MessageType.AUTH: p.Auth, p.MessageType.WELCOME: p.Welcome,
    p.MessageType.PULL_BATCH: p.PullBatch, p.MessageType.PUSH_BATCH: p.PushBatch,
    p.MessageType.ACK: p.Ack, p.MessageType.REFUSAL: p.Refusal, p.MessageType.ERROR: p.Error,
}


def frame_layout() -> dict[str, Any]:
    """The whole wire description, as exported (JSON-ready)."""
    return {
        "protocol_version": p.PROTOCOL_VERSION,
        "header": [{"name": "version", "wire": "u8", "value": p.PROTOCOL_VERSION},
                   {"name": "type", "wire": "u8"}],
        "primitives": {
            "u8": "one byte",
            "bool": "one byte, 0 or 1 (any other value is malformed)",
            "varuint": "unsigned LEB128: 7 bits a byte, low group first, high bit = more; at "
                       "most 53 bits (2^53 - 1)",
            "string": "varuint count of UTF-8 bytes, then the bytes (valid UTF-8); bounds count "
                      "Unicode code points",
            "bytes": "varuint length, then the bytes",
            "list": "varuint count, then each item",
            "struct": "each field in order",
        },
        "limits": LIMITS,
        "endpoint": {"path": "/api/sync/ws", "scheme": "ws for an http:// hub, wss for https://",
                     "frames": "binary only"},
        "auth": {"algorithm": "Ed25519", "context": CHALLENGE_CONTEXT.decode(),
                 "signed": "context (ASCII) + nonce + device_id (UTF-8)"},
        "messages": [{"type": int(t), "name": t.name, **spec} for t, spec in MESSAGES.items()],
        "item_kinds": {k.name.lower(): int(k) for k in p.ItemKind},
        "refusal_reasons": {
            "retryable": sorted(p.RETRYABLE_REASONS),
            "dependent": sorted(p.DEPENDENT_REASONS),
            "rule": "retryable: the hub's own trouble, push the same change again under a new "
                    "update id after a pause; dependent: push it again under a new id once its "
                    "predecessor in the same document lands; any other reason is final",
        },
        "close_codes": {c.name.lower(): int(c) for c in p.CloseCode},
        "strictness": "a frame with an unknown version is unsupported_version; an unknown type, "
                      "a truncated field, invalid UTF-8, a NUL character in a string, a varint "
                      "over 53 bits, a bound exceeded or any trailing byte is malformed "
                      "(too_large for size bounds)",
    }


def to_json(message: p.Message) -> dict[str, Any]:
    """A decoded message in its JSON form: ``{"type": "HELLO", "fields": {...}}``."""
    msg_type = next(t for t, cls in MESSAGE_CLASSES.items() if isinstance(message, cls))
    return {"type": msg_type.name,
            "fields": _struct_json(message, MESSAGES[msg_type]["fields"])}


def _struct_json(value: Any, fields: list[Field]) -> dict[str, Any]:
    if dataclasses.is_dataclass(value):
        return {f["name"]: _value_json(getattr(value, f["name"]), f) for f in fields}
    return {f["name"]: _value_json(v, f) for f, v in zip(fields, value, strict=True)}


def _value_json(value: Any, field: Field) -> Any:
    wire = field["wire"]
    if wire == "bytes":
        return bytes(value).hex()
    if wire == "bool":
        return bool(value)
    if wire == "list":
        item = field["item"]
        if item["wire"] == "struct":
            return [_struct_json(v, item["fields"]) for v in value]
        return [_value_json(v, item) for v in value]
    if wire in ("u8", "varuint"):
        return int(value)
    return value
