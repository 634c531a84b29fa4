"""Consent first: no frame is analysed for a session without a consent record.

`ConsentGate` is the interface the session runner asks; `InMemoryConsentGate` is the simple
implementation a kiosk process holds (the durable CRDT consent record lives elsewhere and feeds a
gate). A missing, expired or withdrawn consent raises `ConsentRequired`, a `PermissionDenied`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from core.errors import PermissionDenied

SCOPE_QD = "qd_scoring"


class ConsentRequired(PermissionDenied):
    """The session has no active consent for this processing."""

    code = "consent_required"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A visitor's consent for one session: who recorded it, when, for what, until when."""

    session_id: str
    reference: str  # e.g. the signed form's id or the kiosk screen's acceptance id
    granted_at: datetime
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({SCOPE_QD}))
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None

    def active(self, scope: str = SCOPE_QD, at: datetime | None = None) -> bool:
        now = at or datetime.now(UTC)
        if self.withdrawn_at is not None and self.withdrawn_at <= now:
            return False
        if self.expires_at is not None and self.expires_at <= now:
            return False
        return scope in self.scopes and self.granted_at <= now


@runtime_checkable
class ConsentGate(Protocol):
    def record(self, session_id: str) -> ConsentRecord | None:
        """The session's consent record, if any (active or not)."""
        ...

    def require(self, session_id: str, scope: str = SCOPE_QD) -> ConsentRecord:
        """The active record, or raise `ConsentRequired`."""
        ...


class InMemoryConsentGate:
    """Consent records held in this process's memory, thread-safe."""

    def __init__(self) -> None:
        self._records: dict[str, ConsentRecord] = {}
        self._lock = threading.Lock()

    def grant(self, session_id: str, reference: str, *, scopes: frozenset[str] | None = None,
              expires_at: datetime | None = None, at: datetime | None = None) -> ConsentRecord:
        if not session_id or not reference.strip():
            raise ValueError("a consent record needs a session id and a reference")
        record = ConsentRecord(session_id, reference, at or datetime.now(UTC),
                               scopes if scopes is not None else frozenset({SCOPE_QD}),
                               expires_at)
        with self._lock:
            self._records[session_id] = record
        return record

    def withdraw(self, session_id: str, at: datetime | None = None) -> None:
        with self._lock:
            record = self._records.get(session_id)
            if record is not None:
                self._records[session_id] = replace(record,
                                                    withdrawn_at=at or datetime.now(UTC))

    def record(self, session_id: str) -> ConsentRecord | None:
        with self._lock:
            return self._records.get(session_id)

    def require(self, session_id: str, scope: str = SCOPE_QD) -> ConsentRecord:
        record = self.record(session_id)
        if record is None:
            raise ConsentRequired(f"session {session_id!r} has no consent record: nothing is "
                                  "analysed before the visitor consents")
        if not record.active(scope):
            raise ConsentRequired(f"session {session_id!r} has no active consent for "
                                  f"{scope!r} (withdrawn, expired or out of scope)")
        return record
