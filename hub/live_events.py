"""A user's live change events: which records they may read changed, as the commits land.

A `ChangeStream` is a reader of the shared live feed (`hub.feed.LogFeed`) for one user, woken by
the same fan-out notices as the sync sessions (on every hub sharing the database) and closed at
once when the user's role, team or status changes. It reads what that user's device would
receive — the same scope rules (`hub.scope.may_read`), a record reassigned away comes as a
removal — and turns it into one small event per changed record: no record content, the page
asks the API for what it shows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType

from core.identity import Principal
from hub.service import Hub

BATCH_ROWS = 500
"""Log rows one read takes; a busier moment is read in several."""
MAX_BEHIND = 5_000
"""A reader further behind than this many commits gets a reset instead of every change."""


@dataclass(frozen=True, slots=True)
class Change:
    """One record that changed (``removed``: it left the user's scope)."""

    collection: str
    id: str
    seq: int
    removed: bool = False

    def as_json(self) -> dict[str, object]:
        return {"collection": self.collection, "id": self.id, "seq": self.seq,
                "removed": self.removed}


@dataclass(frozen=True, slots=True)
class Reset:
    """Too much changed since the reader's position: reload everything, then follow from
    ``seq``."""

    seq: int


class Closed(Exception):
    """The user's account changed (role, team, disabled): the stream ends; sign in again."""

    def __init__(self, change: str) -> None:
        super().__init__(change)
        self.change = change


class ChangeStream:
    """An `async with` reader of one user's visible changes from ``cursor`` (None: from now)."""

    def __init__(self, hub: Hub, principal: Principal, cursor: int | None = None) -> None:
        self._hub = hub
        self.principal = Principal(principal.tenant_id, principal.user_id, principal.role,
                                   principal.team_id)  # no device: every origin is news
        self.tenant_id = principal.tenant_id
        self.cursor = cursor if cursor is not None else -1
        self._known_last: int | None = None
        self._woken = asyncio.Event()
        self._closed: str | None = None

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    async def __aenter__(self) -> ChangeStream:
        self._hub.connections.watch(self)  # first: a commit from here on wakes us
        last, _ = await self._hub.store.high_water(self.tenant_id)
        if not 0 <= self.cursor <= last:  # from now; or a position from a restored database
            self.cursor = last
        self._known_last = last
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._hub.connections.unwatch(self)

    def wake(self, last: int | None = None) -> None:
        if last is None:
            self._known_last = None  # ask the database: a notice may have been missed
        elif self._known_last is not None:
            self._known_last = max(self._known_last, last)
        self._woken.set()

    async def close_for_account(self, change: str) -> None:
        self._closed = change
        self._woken.set()

    async def next(self, timeout: float) -> list[Change] | Reset:
        """The next changes (empty after ``timeout`` seconds without any); raises `Closed`."""
        try:
            await asyncio.wait_for(self._wait(), timeout)
        except TimeoutError:
            return []
        if self._closed is not None:
            raise Closed(self._closed)
        self._woken.clear()
        if self._known_last is None:
            self._known_last, _ = await self._hub.store.high_water(self.tenant_id)
        last = self._known_last
        if last - self.cursor > MAX_BEHIND:
            self.cursor = last
            return Reset(last)
        changes: dict[str, Change] = {}
        while self.cursor < last:
            items, self.cursor = await self._hub.feed.read(self.principal, self.cursor,
                                                           BATCH_ROWS, last=last)
            for item in items:
                name, _, record_id = item.guid.partition("/")
                changes.pop(item.guid, None)  # the latest of a record's changes, in order
                changes[item.guid] = Change(name, record_id, item.seq, item.removed)
        return list(changes.values())

    async def _wait(self) -> None:
        while True:
            if self._closed is not None or (
                    self._known_last is None or self._known_last > self.cursor):
                return
            self._woken.clear()
            await self._woken.wait()
