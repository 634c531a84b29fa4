"""Live sync connections of this hub process, by tenant and device."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol


class LiveSession(Protocol):
    tenant_id: str
    device_id: str

    @property
    def user_id(self) -> str:
        """The user the device belongs to."""

    @property
    def cursor(self) -> int:
        """The last sequence this session sent its device (or resumed from)."""

    def wake(self, last: int | None = None) -> None:
        """New commits may be readable (up to ``last``, when known): pull from the cursor."""

    async def close_revoked(self) -> None:
        """Close at once because the device was revoked or blocked."""

    async def close_for_account(self, change: str) -> None:
        """Close at once because the user's role, team or status changed."""


class Watcher(Protocol):
    """A live reader that is not a device (the WebOS change stream): woken by commits, closed
    when its user's account changes, not counted as a sync session."""

    tenant_id: str

    @property
    def user_id(self) -> str:
        """The user it reads for."""

    def wake(self, last: int | None = None) -> None:
        """New commits may be readable (up to ``last``, when known)."""

    async def close_for_account(self, change: str) -> None:
        """Close at once because the user's role, team or status changed."""


class Connections:
    """Registry the fan-out and revocation use to reach live sessions."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, set[LiveSession]] = defaultdict(set)
        self._watchers: dict[str, set[Watcher]] = defaultdict(set)
        self._newest: dict[str, int] = {}
        """Each tenant's newest committed sequence this hub heard of (fan-out notices)."""

    def add(self, session: LiveSession) -> None:
        self._by_tenant[session.tenant_id].add(session)

    def discard(self, session: LiveSession) -> None:
        self._by_tenant[session.tenant_id].discard(session)

    def watch(self, watcher: Watcher) -> None:
        self._watchers[watcher.tenant_id].add(watcher)

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers[watcher.tenant_id].discard(watcher)

    def sessions(self, tenant_id: str) -> list[LiveSession]:
        """The live sync sessions of one tenant on this hub process."""
        return list(self._by_tenant.get(tenant_id, ()))

    def wake_tenant(self, tenant_id: str, last: int | None = None) -> None:
        if last is not None:
            self._newest[tenant_id] = max(last, self._newest.get(tenant_id, 0))
        for session in list(self._by_tenant.get(tenant_id, ())):
            session.wake(last)
        for watcher in list(self._watchers.get(tenant_id, ())):
            watcher.wake(last)

    def wake_all(self) -> None:
        for sessions in list(self._by_tenant.values()):
            for session in list(sessions):
                session.wake()
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.wake()

    async def close_device(self, device_id: str) -> int:
        targets = [s for ss in self._by_tenant.values() for s in ss if s.device_id == device_id]
        await asyncio.gather(*(s.close_revoked() for s in targets))
        return len(targets)

    def by_tenant(self) -> list[tuple[str, int, int]]:
        """(tenant, live sessions, most updates any of them has yet to pass), for metrics."""
        out = []
        for tenant, sessions in list(self._by_tenant.items()):
            if sessions:
                newest = self._newest.get(tenant, 0)
                behind = max((newest - s.cursor for s in list(sessions)), default=0)
                out.append((tenant, len(sessions), max(0, behind)))
        return out

    async def close_user(self, tenant_id: str, user_id: str, change: str) -> int:
        targets: list[LiveSession | Watcher] = [
            s for s in self._by_tenant.get(tenant_id, ()) if s.user_id == user_id]
        targets += [w for w in self._watchers.get(tenant_id, ()) if w.user_id == user_id]
        await asyncio.gather(*(s.close_for_account(change) for s in targets))
        return len(targets)

    def count(self, tenant_id: str | None = None) -> int:
        """Live sessions of one tenant, or of all."""
        if tenant_id is not None:
            return len(self._by_tenant.get(tenant_id, ()))
        return sum(len(s) for s in self._by_tenant.values())
