"""Time-ordered identifiers (UUIDv7, RFC 9562) and document guids."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """Return a new UUIDv7 string: sortable by creation time, unique across devices."""
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            _counter += 1
            if _counter >= 1 << 12:
                _last_ms += 1
                _counter = 0
            now_ms = _last_ms
        else:
            _last_ms = now_ms
            _counter = 0
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return str(uuid.UUID(int=value))


def id_timestamp_ms(record_id: str) -> int:
    """Milliseconds since the epoch encoded in a UUIDv7."""
    return uuid.UUID(record_id).int >> 80


def is_valid_id(value: str) -> bool:
    """True for a canonical UUID string (any version; seeds use deterministic UUIDs)."""
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, AttributeError, TypeError):
        return False


def deterministic_id(namespace: str, name: str) -> str:
    """A stable UUIDv5 for seeded data, so regenerating a dataset yields the same ids."""
    return str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, namespace), name))


def make_guid(collection: str, record_id: str) -> str:
    """Document guid ``<collection>/<id>``."""
    return f"{collection}/{record_id}"


def split_guid(guid: str) -> tuple[str, str]:
    """Inverse of `make_guid`; raises ValueError on a malformed guid."""
    collection, sep, record_id = guid.partition("/")
    if not sep or not collection or not record_id or "/" in record_id:
        raise ValueError(f"malformed document guid: {guid!r}")
    return collection, record_id
