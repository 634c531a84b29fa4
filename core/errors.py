"""The one exception hierarchy of Velocity Edge.

Each error carries a stable machine-readable ``code`` (the reason code sent to devices and shown in
refusals) and a message fit for a person. Lower layers raise these; the hub and the edge agent map
them to HTTP statuses and websocket close codes in one place each.
"""

from __future__ import annotations


class VelocityError(Exception):
    """Base of every error Velocity Edge raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


# --- protocol -------------------------------------------------------------------------------


class ProtocolError(VelocityError):
    """A peer sent something that does not follow the wire protocol."""

    code = "protocol"


class MalformedFrame(ProtocolError):
    """A frame or update could not be decoded: truncated, trailing bytes, bad varint, bad UTF-8."""

    code = "malformed"


class FrameTooLarge(ProtocolError):
    """A frame or update exceeds a configured size, count or depth bound."""

    code = "too_large"


class UnsupportedVersion(ProtocolError):
    """The peer speaks a protocol version this build does not."""

    code = "unsupported_version"


class UnsafeUpdate(ProtocolError):
    """A CRDT update uses a construct the schema forbids or that is known to crash the library."""

    code = "unsafe_update"


class Throttled(ProtocolError):
    """The peer sends faster than it is allowed to (e.g. after refused unsafe updates, or too
    many failed logins); ``retry_after_s``: when it may try again, when known."""

    code = "throttled"

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class CausalityError(ProtocolError):
    """A CRDT update's clocks do not continue what the receiver holds (gap, overlap, foreign id)."""

    code = "causality"


# --- auth -----------------------------------------------------------------------------------


class AuthError(VelocityError):
    """Authentication failed: unknown, expired, forged or revoked credentials."""

    code = "auth"


class PermissionDenied(AuthError):
    """The principal is authenticated but may not do this."""

    code = "forbidden"


# --- storage --------------------------------------------------------------------------------


class StorageError(VelocityError):
    """A durable store failed or holds something it should not."""

    code = "storage"


class NotFound(StorageError):
    """The record or resource does not exist (or is outside the caller's scope)."""

    code = "not_found"


class DiskFull(StorageError):
    """The device's disk (or its database's size limit) is full."""

    code = "disk_full"


class StorageFailed(StorageError):
    """The disk or database file failed to read or write (an I/O error)."""

    code = "io_error"


class Conflict(StorageError):
    """The request conflicts with the current state (duplicate, already used, revoked)."""

    code = "conflict"


# --- validation -----------------------------------------------------------------------------


class RecordInvalid(VelocityError):
    """A document does not project to a valid record of its collection."""

    code = "invalid_record"

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class FieldTooLarge(RecordInvalid):
    """A field exceeds its size limit (string length, list length, element size, map keys)."""

    code = "field_too_large"


class UnsafeValue(RecordInvalid):
    """A value no store can keep faithfully: a NUL character, an integer beyond ±(2^53 − 1), a
    non-finite number."""

    code = "unsafe_value"


class UnknownCollection(RecordInvalid):
    """The collection named in a guid is not part of the schema."""

    code = "unknown_collection"


class PendingUpdates(VelocityError):
    """A document holds updates whose predecessors have not arrived; it cannot be compacted."""

    code = "pending"


class ConfigError(VelocityError):
    """A setting is missing or has a bad value; the message names the setting."""

    code = "config"
