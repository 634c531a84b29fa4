"""The hub as one `async with` service owning its database, sandbox, fan-out and sessions."""

from __future__ import annotations

import secrets
from contextlib import AsyncExitStack
from types import TracebackType

from core.settings import SyncLimits, load_settings
from gpu_hub.front import GpuFront
from hub.accounts import Accounts
from hub.awareness_relay import PresenceRelay
from hub.committer import GroupCommitter
from hub.comms_ingest import CommsIngest
from hub.comms_sender import CommsSender
from hub.connections import Connections
from hub.cursor_log import CursorLog
from hub.database import Database, start_embedded_postgres
from hub.fanout import Fanout
from hub.feed import LogFeed
from hub.gate import Gate
from hub.gpu_requests import GpuRequestWatcher
from hub.metrics import HubMetrics
from hub.presence import Presence
from hub.pull_merge import UpdateMerger
from hub.settings import HubSettings
from hub.signing import signing_secret
from hub.storage import Storage
from hub.store import HubStore, LocalWriter
from sync.sandbox import SandboxPool


class Hub:
    """Everything one hub process needs; several hubs may share one PostgreSQL."""

    def __init__(self, settings: HubSettings | None = None, limits: SyncLimits | None = None):
        self.settings = settings or load_settings(HubSettings)
        self.limits = limits or load_settings(SyncLimits)
        self.connections = Connections()
        self._stack = AsyncExitStack()
        self.secret_key = ""

    @property
    def database_url(self) -> str:
        return self.db.url

    async def __aenter__(self) -> Hub:
        url = self.settings.database_url or start_embedded_postgres(self.settings.data_dir / "pg")
        try:
            self.db = await self._stack.enter_async_context(Database(url))
            self.store = HubStore(self.db)
            self.storage = Storage(self.db, self.store)
            self.feed = LogFeed(self.store)
            self.merger = (UpdateMerger(self.limits.max_update_bytes // 2)
                           if self.settings.merge_pull else None)
            self.accounts = Accounts(self.db)
            self.writer = LocalWriter(self.store, secrets.randbits(52) | 1 << 52)
            self.sandbox = await self._stack.enter_async_context(
                SandboxPool(self.settings.sandbox_workers, self.settings.sandbox_timeout_s)
            )
            self.gate = await self._stack.enter_async_context(
                Gate(self.store, self.sandbox, self.limits,
                     hot_documents=self.settings.gate_documents,
                     hot_bytes=self.settings.gate_memory_mb * 2**20))
            self.committer = await self._stack.enter_async_context(
                GroupCommitter(self.store, on_settled=self.gate.settle))
            self.metrics = HubMetrics(self)
            self.fanout = await self._stack.enter_async_context(
                Fanout(self.db, self.connections)
            )
            await self._stack.enter_async_context(Presence(self.storage.devices, self.connections))
            self.cursor_log = await self._stack.enter_async_context(
                CursorLog(self.storage.registry))
            self.awareness = await self._stack.enter_async_context(PresenceRelay(self.db))
            self.secret_key = self.settings.secret_key or await signing_secret(
                self.storage.settings, self.settings.token_seal_file)
            self.gpu = await self._stack.enter_async_context(GpuFront(self.db.pool))
            self.gpu_requests = await self._stack.enter_async_context(GpuRequestWatcher(self))

            self.comms_ingest = await self._stack.enter_async_context(CommsIngest(self))
            self.comms_sender = await self._stack.enter_async_context(CommsSender(self))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def revoke_device(self, device_id: str) -> None:
        """Close the device's live sessions on every hub (this one at once)."""
        await self.connections.close_device(device_id)
        await self.fanout.publish_revocation(device_id)
