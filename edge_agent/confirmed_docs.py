"""The hub-confirmed documents a replica touched last, kept live between pull batches.

Building a document from its stored confirmed state costs as much as its whole history (8 ms a
pull batch for a canvas page 2,500 edits long); a kept one only applies what is new. An entry
is used only while the replica's stored confirmed state is still exactly the state it was kept
with, so a write the cache did not see (a refusal's rebuild, a transaction that rolled back)
makes it build from storage again, never apply to the wrong base.
"""

from __future__ import annotations

from collections import OrderedDict

from schema import Collection
from sync.record import RecordDoc

KEPT_DOCUMENTS = 64
KEPT_BYTES = 32 * 2**20
"""About how many documents, and how many bytes of their states, are kept (least recent out)."""


class ConfirmedDocs:
    """A small LRU of confirmed documents keyed by guid, each with the state it stands at."""

    def __init__(self, documents: int = KEPT_DOCUMENTS, size: int = KEPT_BYTES) -> None:
        self._kept: OrderedDict[str, tuple[RecordDoc, bytes]] = OrderedDict()
        self._documents, self._size, self._bytes = documents, size, 0

    def take(self, coll: Collection, record_id: str, guid: str, stored: bytes | None
             ) -> RecordDoc:
        """The confirmed document at ``stored`` (the state storage holds), kept or built; it
        is the caller's until handed back with `keep`."""
        entry = self._kept.pop(guid, None)
        if entry is not None:
            self._bytes -= len(entry[1])
            if entry[1] == (stored or b""):
                return entry[0]
        return RecordDoc(coll, record_id, state=stored or None)

    def keep(self, guid: str, doc: RecordDoc, state: bytes) -> None:
        """Keep ``doc``, whose state ``state`` is now what storage holds."""
        old = self._kept.pop(guid, None)
        if old is not None:
            self._bytes -= len(old[1])
        self._kept[guid] = (doc, state)
        self._bytes += len(state)
        while self._kept and (len(self._kept) > self._documents or self._bytes > self._size):
            self._bytes -= len(self._kept.popitem(last=False)[1][1])
