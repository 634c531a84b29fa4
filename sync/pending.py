"""Causal readiness of an update: we hold back what pycrdt would mishandle.

pycrdt accepts an update whose predecessors have not arrived; sometimes it holds it silently
(and leaves it out of snapshots), sometimes it shows it at once with a clock gap (and later
diverges from a Yjs peer). So the record engine gives pycrdt only updates whose every struct
continues the document's state vector and whose origins and deletes name clocks it holds.
"""

from __future__ import annotations

from collections.abc import Mapping

from sync.yupdate import DecodedUpdate


def is_ready(update: DecodedUpdate, held: Mapping[int, int]) -> bool:
    """True when ``update`` depends only on clocks in ``held`` (or on its own structs)."""
    if any(first > held.get(client, 0) for client, (first, _) in update.clients.items()):
        return False
    known = dict(held)
    for client, (_, end) in update.clients.items():
        known[client] = max(known.get(client, 0), end)
    for s in update.structs:
        for ref in (s.origin, s.right_origin):
            if ref is not None and ref.clock >= known.get(ref.client, 0):
                return False
    return all(clock + length <= known.get(client, 0)
               for client, ranges in update.delete_set.items() for clock, length in ranges)
