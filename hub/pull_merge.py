"""Merged pull items: the updates of one document that a reader receives in one read go to its
device as one item, a Yjs merged update (``mergeUpdates``), instead of one item per update.

A live session reads everything committed since it last sent (so what piled up while its socket
was busy comes in one read) and merges it here: one item per document, placed at the document's
last update, whose ``seq`` is that update's. Snapshots and removals stand for their document's
whole history already and are never merged. Sessions at the same cursor read the same runs, so a
merge is remembered (by document and sequences) for the next session that asks.

The cursor rule still holds: an item now stands for the sequences ``first`` to ``seq`` of its
document, so a batch cut out of a read may only resume from below the earliest ``first`` still
to come (`resume_before`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import VelocityError
from hub.store import LogItem
from sync.record import merge_updates

CACHE_BYTES = 16 * 2**20
"""Merged updates remembered for the other sessions reading the same run (least recent out)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A pull item and the earliest log sequence it stands for (``item.seq`` is the latest)."""

    item: LogItem
    first: int


def resume_before(rest: Sequence[Outgoing], fallback: int) -> int:
    """The cursor a device may store once everything before ``rest`` is applied: below the
    earliest sequence an item still to come stands for (``fallback`` when none is left)."""
    return min((o.first for o in rest), default=fallback + 1) - 1


class UpdateMerger:
    """Merges each document's run of updates in a read; shared by the sessions of a hub."""

    def __init__(self, max_bytes: int, *, cache_bytes: int = CACHE_BYTES) -> None:
        """``max_bytes``: the most update bytes one merged item may hold (the device refuses
        an item over its update limit)."""
        self._max_bytes = max_bytes
        self._cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, tuple[int, ...]], bytes] = OrderedDict()
        self._cached = 0
        self.merges = 0
        """Merges computed (not found remembered), for tests and metrics."""

    def merge(self, items: Sequence[LogItem], own: str | None = None) -> list[Outgoing]:
        """``items`` (in sequence order) with each document's updates as one item at the
        position of its last; a run over ``max_bytes`` is cut into several. Updates whose
        ``origin`` is ``own`` (the reader's device) go only into a merge with others' updates:
        a run of its own updates alone is left out."""
        out: list[Outgoing] = []
        runs: dict[str, list[LogItem]] = {}
        sizes: dict[str, int] = {}
        for item in items:
            run = runs.get(item.guid)
            if item.snapshot or item.removed:  # never merged across (the read skips them)
                if run is not None:
                    out += self._merged(runs.pop(item.guid), own)
                out.append(Outgoing(item, item.seq))
                continue
            if run is not None and sizes[item.guid] + len(item.data) > self._max_bytes:
                out += self._merged(runs.pop(item.guid), own)
                run = None
            if run is None:
                run, sizes[item.guid] = runs.setdefault(item.guid, []), 0
            run.append(item)
            sizes[item.guid] += len(item.data)
        for run in runs.values():
            out += self._merged(run, own)
        out.sort(key=lambda o: o.item.seq)  # each where its last update was read
        return out

    def _merged(self, run: list[LogItem], own: str | None) -> list[Outgoing]:
        """One item for the run, or its items unmerged (the reader's own left out) when
        merging fails or gives more than ``max_bytes``; nothing for a run of its own only."""
        if own is not None and all(i.origin == own for i in run):
            return []
        if len(run) == 1:
            return [Outgoing(run[0], run[0].seq)]
        key = (run[0].guid, tuple(i.seq for i in run))
        data = self._cache.get(key)
        if data is None:
            try:
                data = merge_updates([i.data for i in run])
            except VelocityError:
                data = b""
            self.merges += 1
            self._remember(key, data)
        else:
            self._cache.move_to_end(key)
        if not data or len(data) > self._max_bytes:
            return [Outgoing(i, i.seq) for i in run if own is None or i.origin != own]
        return [Outgoing(LogItem(run[-1].seq, run[0].guid, data, False), run[0].seq)]

    def _remember(self, key: tuple[str, tuple[int, ...]], data: bytes) -> None:
        self._cache[key] = data
        self._cached += len(data)
        while self._cached > self._cache_bytes and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cached -= len(dropped)
