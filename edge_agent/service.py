"""The edge agent as one `async with` service: replica, sync client, local writes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from core.errors import ConfigError, VelocityError
from core.ids import new_id
from edge_agent.crypto import Sealer
from edge_agent.device import Pairing, load_pairing, unlock
from edge_agent.gpu_request_status import gpu_request_summary
from edge_agent.netwatch import NetworkWatch, route_fingerprint
from edge_agent.replica import Replica
from edge_agent.sentinel import KioskSentinel
from edge_agent.settings import EdgeSettings
from edge_agent.sync_client import SyncClient
from schema.models import Record
from schema.qd import score_writes

TOKEN_FILE = "local.token"


def local_token(data_dir: Path) -> str:
    """The token local apps present to the loopback API (created once, owner-only)."""
    path = data_dir / TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


class EdgeAgent:
    """Everything a device runs; writes are local and never wait for the network."""

    def __init__(self, settings: EdgeSettings, *, sync: bool = True) -> None:
        self.settings = settings
        self._sync_enabled = sync
        self._stack = AsyncExitStack()
        self.sync: SyncClient | None = None
        self.sentinel: KioskSentinel | None = None

    async def __aenter__(self) -> EdgeAgent:
        data_dir = self.settings.data_dir
        self.pairing: Pairing = load_pairing(data_dir)
        keys = unlock(data_dir, self.settings.passphrase_value)
        key = keys.device
        self.token = local_token(data_dir)
        try:
            self.replica = await self._stack.enter_async_context(
                Replica(data_dir / "replica.db", Sealer(keys.replica_secret),
                        self.pairing.client_id)
            )
            if self._sync_enabled:
                self.sync = await self._stack.enter_async_context(SyncClient(
                    self.replica, self.pairing, key, batch=self.settings.push_batch,
                    backoff_base_s=self.settings.backoff_base_s,
                    backoff_cap_s=self.settings.backoff_cap_s,
                    max_window=self.settings.push_window,
                ))
                if self.settings.network_watch_s > 0:
                    hub = urlsplit(self.pairing.hub_url)
                    await self._stack.enter_async_context(NetworkWatch(
                        partial(route_fingerprint, hub.hostname or "localhost",
                                hub.port or (443 if hub.scheme == "https" else 80)),
                        self.sync.network_changed, self.settings.network_watch_s))
            if self.settings.sentinel or (self.settings.sentinel is None
                                          and self.pairing.kind == "kiosk"):
                try:
                    from perception.settings import load_sentinel_settings
                except ImportError as exc:
                    raise ConfigError(
                        "Sentinel needs the kiosk extra (pip install -e '.[kiosk]'), or set "
                        "VELOCITY_EDGE_SENTINEL=false on this device") from exc
                self.sentinel = await self._stack.enter_async_context(KioskSentinel(
                    self.replica, self.write, self.pairing.tenant_id, self.pairing.user_id,
                    load_sentinel_settings()))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def write(self, collection: str, record_id: str | None,
                    values: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
                    ) -> Record:
        """Create (no id) or change a record locally; durable when this returns. A change's
        ``values`` may be a function of the record's content as it stands when written."""
        writes: list[tuple[str, str, Any]] = []
        if record_id is None:
            assert isinstance(values, dict), "a new record takes plain values"
            record_id = new_id()
            values = {"tenant_id": self.pairing.tenant_id, "owner_id": self.pairing.user_id,
                      **values}
            if collection == "qd_scores":  # it reaches its lead's person and the lead's last QD
                writes = score_writes(record_id, values, self._lead(values.get("lead_id")))
        record = (await self.replica.write_many(writes or [(collection, record_id, values)]))[0]
        if self.sync is not None:
            self.sync.poke()
        return record

    def _lead(self, lead_id: object) -> dict[str, Any] | None:
        """A lead as this device holds it, or None (not named, not held, or not valid)."""
        if not isinstance(lead_id, str):
            return None
        try:
            return self.replica.record("leads", lead_id).model_dump(mode="json")
        except VelocityError:
            return None

    async def status(self) -> dict[str, Any]:
        sync = self.sync
        return {
            "device_id": self.pairing.device_id,
            "hub": self.pairing.hub_url,
            "online": bool(sync and sync.online),
            "pending_updates": await self.replica.pending_count(),
            "cursor": await self.replica.cursor(),
            "last_sync": sync.last_sync.isoformat() if sync and sync.last_sync else None,
            "last_error": sync.last_error if sync else None,
            "stopped": sync.stopped_reason if sync else None,
            "refusals": await self.replica.refusals(),
            "invalid_documents": dict(self.replica.invalid),
            "storage": self.replica.storage(),
            "gpu_requests": await gpu_request_summary(self.replica),
        }
