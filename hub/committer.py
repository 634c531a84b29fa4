"""Group commit: the push batches of one tenant that arrive while a commit is running go into
the next transaction together.

Commits of one tenant take turns anyway (each holds the tenant's sequence row until it commits,
which is what keeps cursors from skipping late commits), so merging the waiting ones costs no
concurrency: it turns N transactions (N fsyncs, N times the fixed round trips) into one. Each
batch still gets its own results, and its device's ack only after the shared commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from types import TracebackType

from core.identity import Principal
from hub.store import Change, Committed, HubStore, NotCommitted, PushGroup

Results = list[Committed | NotCommitted]
Settled = Callable[[Sequence[Change], Sequence[Committed | NotCommitted] | None], None]
"""Told what became of every batch's changes: each one's result (None: none committed)."""
MAX_CHANGES_PER_COMMIT = 2000
"""A bound on one transaction, so one tenant's flood cannot build an unbounded commit."""


class GroupCommitter:
    """An `async with` service owning one drain task per tenant with waiting batches."""

    def __init__(self, store: HubStore, on_settled: Settled | None = None) -> None:
        self._store = store
        self._on_settled = on_settled
        self._waiting: dict[str, list[tuple[PushGroup, asyncio.Future[Results]]]] = (
            defaultdict(list))
        self._drains: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> GroupCommitter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in list(self._drains.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def commit(
        self, tenant_id: str, changes: Sequence[Change], *, user_id: str | None,
        device_id: str | None, principal: Principal | None = None,
    ) -> Results:
        """Commit one batch (with whatever else of this tenant is waiting); its results.
        ``principal``: whose changes the gate judged (see `PushGroup`)."""
        future: asyncio.Future[Results] = asyncio.get_running_loop().create_future()
        group = PushGroup(changes, user_id, device_id, principal)
        self._waiting[tenant_id].append((group, future))
        if tenant_id not in self._drains:
            self._drains[tenant_id] = asyncio.create_task(
                self._drain(tenant_id), name=f"velocity-commit-{tenant_id}")
        return await asyncio.shield(future)  # a session that goes away leaves the commit be

    async def _drain(self, tenant_id: str) -> None:
        waiting = self._waiting[tenant_id]
        group: list[tuple[PushGroup, asyncio.Future[Results]]] = []
        try:
            while waiting:
                taken, size = 0, 0
                while taken < len(waiting) and (
                        not taken or size + len(waiting[taken][0].changes)
                        <= MAX_CHANGES_PER_COMMIT):
                    size += len(waiting[taken][0].changes)
                    taken += 1
                group, waiting[:taken] = waiting[:taken], []
                try:
                    results = await self._store.commit_groups(tenant_id, [g for g, _ in group])
                except Exception as exc:
                    for push, future in group:
                        self._settled(push.changes, None)
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (push, future), result in zip(group, results, strict=True):
                    self._settled(push.changes, result)
                    if not future.done():
                        future.set_result(result)
        except asyncio.CancelledError:
            for push, future in group + waiting:
                self._settled(push.changes, None)
                if not future.done():
                    future.cancel()
            raise
        finally:
            self._drains.pop(tenant_id, None)
            if not waiting:
                self._waiting.pop(tenant_id, None)

    def _settled(self, changes: Sequence[Change],
                 results: Sequence[Committed | NotCommitted] | None) -> None:
        if self._on_settled is not None:
            self._on_settled(changes, results)
