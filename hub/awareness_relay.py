"""Presence between hub processes: y-websocket awareness carried by PostgreSQL LISTEN/NOTIFY.

A canvas page's Yjs clients may be connected to different hubs of one deployment. Each hub
relays the awareness entries its own clients send as notices on ``velocity_awareness``
(``{"o": origin hub, "r": room, "e": [[client, clock, state], ...]}``, split to fit NOTIFY's
8,000-byte payload); every other hub passes them to its clients of that page. A hub whose first
client joins a page asks the others (``{"o", "r", "ask": true}``) to announce their clients'
current states again, so the newcomer sees everyone already there. Notices are not stored: a
notice lost while a listener reconnects is repaired by the clients' own renewal (y-protocols
renews every 15 s and drops a state not renewed within 30 s, which also clears the clients of
a hub that died).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from core.ids import new_id
from hub.database import Database
from sync.yws import AwarenessEntry

log = logging.getLogger(__name__)
PRESENCE_CHANNEL = "velocity_awareness"
MAX_NOTICE_BYTES = 7_900
"""PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more."""


@dataclass(frozen=True, slots=True)
class Notice:
    """What another hub said about a room: its clients' entries, or a request to repeat them."""

    room: str
    entries: tuple[AwarenessEntry, ...] = ()
    ask: bool = False


Listener = Callable[[Notice], None]


class PresenceRelay:
    """Owns one listening connection; publishes this hub's awareness to the others."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.origin = new_id()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> PresenceRelay:
        self._task = asyncio.create_task(self._run(), name="velocity-presence")
        await asyncio.wait_for(self._ready.wait(), timeout=30)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every notice another hub sends."""
        self._listeners.append(listener)

    async def publish(self, room: str, entries: Sequence[AwarenessEntry]) -> None:
        """Tell the other hubs about these entries of this hub's clients (an entry too large
        for one notice stays on this hub)."""
        batch: list[list[Any]] = []
        for e in entries:
            one = [e.client_id, e.clock, e.state]
            if len(_payload(self.origin, room, [*batch, one])) > MAX_NOTICE_BYTES:
                if batch:
                    await self._notify(_payload(self.origin, room, batch))
                batch = []
                if len(_payload(self.origin, room, [one])) > MAX_NOTICE_BYTES:
                    log.info("awareness state of client %s (%d bytes) too large to relay to "
                             "other hubs", e.client_id, len(e.state))
                    continue
            batch.append(one)
        if batch:
            await self._notify(_payload(self.origin, room, batch))

    async def ask(self, room: str) -> None:
        """Ask the other hubs to announce their clients of ``room`` again."""
        await self._notify(json.dumps({"o": self.origin, "r": room, "ask": True}))

    async def _notify(self, payload: str) -> None:
        try:
            await self._db.notify(PRESENCE_CHANNEL, payload)
        except Exception as exc:  # presence is best effort: the clients renew their states
            log.warning("awareness not relayed to other hubs: %s", exc)

    def _on_notice(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message["o"] == self.origin:
                return
            notice = Notice(str(message["r"]), tuple(
                AwarenessEntry(int(c), int(k), str(s)) for c, k, s in message.get("e", ())),
                ask=bool(message.get("ask")))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed presence notice")
            return
        for listener in self._listeners:
            listener(notice)

    async def _run(self) -> None:
        await self._db.listen_forever({PRESENCE_CHANNEL: self._on_notice}, what="presence",
                                      on_listening=self._ready.set)


def _payload(origin: str, room: str, entries: list[list[Any]]) -> str:
    return json.dumps({"o": origin, "r": room, "e": entries}, separators=(",", ":"))
