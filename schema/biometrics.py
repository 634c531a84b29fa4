"""Perception results that rest on a visitor's biometric consent, and what purging leaves.

Revoking consent purges every result of that person or session: the record becomes a tombstone
whose biometric-derived values are cleared, written as an ordinary CRDT change so the purge
reaches every replica. The hub and a kiosk both purge with these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

PURGED: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "qd_scores": MappingProxyType({"deleted": True, "score": None, "signals": []}),
    "perception_sessions": MappingProxyType(
        {"deleted": True, "qd_final": None, "frames_seen": 0, "signals": []}),
})
"""Collection → the values a purge writes into each of its matching records."""

RESULT_KEYS: Mapping[str, str] = MappingProxyType(
    {"qd_scores": "session_id", "perception_sessions": "id"})
"""Collection → the column holding the perception session a result belongs to."""


def purge_values(coll_name: str) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in PURGED[coll_name].items()}
