"""Outbox flow control, free of I/O: which pushed batches await the hub's answer and how many
may, sized by how long the answers take."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_agent.replica import OutboxEntry


@dataclass(slots=True)
class _Batch:
    sent_at: float
    size: int
    waiting: set[str]


@dataclass
class PushWindow:
    """A bounded window of unanswered push batches.

    The hub judges one session's batches one after another, so more than a couple in flight
    only queue up there. The window grows by one batch while answers come back within twice
    the fastest answer seen per update (plus a small allowance), and shrinks by one when they
    come back slower: the device keeps the hub busy without piling work in front of it. The
    outbox is read on from ``after``, the last position sent; a refusal to push again rewinds
    it.
    """

    max_batches: int = 8
    slack_s: float = 0.05
    min_timeout_s: float = 15.0
    limit: int = 2
    after: int = 0
    fastest: float = float("inf")
    smoothed: float | None = None
    _batches: dict[int, _Batch] = field(default_factory=dict)
    _owner: dict[str, int] = field(default_factory=dict)
    _next_batch: int = 0

    @property
    def open(self) -> bool:
        """Another batch may be sent now."""
        return len(self._batches) < self.limit

    @property
    def in_flight(self) -> int:
        return len(self._owner)

    def waiting(self, update_id: str) -> bool:
        return update_id in self._owner

    def sendable(self, entries: Iterable[OutboxEntry]) -> list[OutboxEntry]:
        """The entries not already awaiting an answer."""
        return [e for e in entries if e.update_id not in self._owner]

    def sent(self, entries: list[OutboxEntry], now: float, *, read_to: int) -> None:
        """``entries`` went out as one batch; the outbox was read up to position ``read_to``."""
        self.after = max(self.after, read_to)
        if not entries:
            return
        number = self._next_batch
        self._next_batch += 1
        self._batches[number] = _Batch(now, len(entries), {e.update_id for e in entries})
        for e in entries:
            self._owner[e.update_id] = number

    def answered(self, update_id: str, now: float) -> bool:
        """The hub answered one update (ACK or REFUSAL); False when it was not awaited."""
        number = self._owner.pop(update_id, None)
        if number is None:
            return False
        batch = self._batches[number]
        batch.waiting.discard(update_id)
        if not batch.waiting:
            del self._batches[number]
            self._adapt(now - batch.sent_at, batch.size)
        return True

    def rewind(self, position: int) -> None:
        """Read the outbox again from ``position`` (an update there is to be pushed again)."""
        self.after = min(self.after, position - 1)

    def overdue(self, now: float) -> bool:
        """A batch has waited far longer than answers take: the session is stuck."""
        if not self._batches:
            return False
        oldest = min(b.sent_at for b in self._batches.values())
        return now - oldest > self.timeout_s

    @property
    def timeout_s(self) -> float:
        return max(self.min_timeout_s, 8 * (self.smoothed or 0.0))

    def _adapt(self, latency: float, size: int) -> None:
        per_update = latency / size
        self.fastest = min(self.fastest, per_update)
        self.smoothed = latency if self.smoothed is None else (
            0.8 * self.smoothed + 0.2 * latency)
        if per_update <= 2 * self.fastest + self.slack_s / size:
            self.limit = min(self.max_batches, self.limit + 1)
        else:
            self.limit = max(1, self.limit - 1)
