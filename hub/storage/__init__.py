"""The hub's storage: every SQL statement of the hub is in this package (or in `hub.store`,
the sync store it exposes), one small class per concern over `hub.database.Database`.

`Storage` is the one object the rest of the hub reaches them through (``hub.storage``):
routes, the feed, Sentinel, seeds and the demo call its methods and hold no SQL of their own
(``tests/test_storage_seam.py`` keeps it so)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.database import Database
from hub.storage.accounts import AccountStore
from hub.storage.audit import AuditLog
from hub.storage.canvas import CanvasStore
from hub.storage.comms import CommsStore
from hub.storage.comms_channels import Channels
from hub.storage.devices import DeviceRegistry, DeviceStore
from hub.storage.documents import DocumentReads
from hub.storage.gpu_requests import GpuRequestStore
from hub.storage.imports import ImportStore
from hub.storage.log import LogReads
from hub.storage.projection import Projection
from hub.storage.sentinel import SentinelStore
from hub.storage.server import ServerInfo
from hub.storage.settings import SettingsStore
from hub.storage.surfaces import SurfaceStore
from hub.storage.webos import WebosReads

if TYPE_CHECKING:  # hub.store reads its checkpoints from this package
    from hub.store import HubStore


class Storage:
    """The hub's stores by concern; ``sync`` is the log, commit and document store."""

    def __init__(self, db: Database, sync: HubStore) -> None:
        self.sync = sync
        self.log = LogReads(db)
        self.documents = DocumentReads(db)
        self.audit = AuditLog(db)
        self.projection = Projection(db)
        self.canvas = CanvasStore(db)
        self.channels = Channels(db)
        self.comms = CommsStore(db)
        self.imports = ImportStore(db)
        self.gpu_requests = GpuRequestStore(db)
        self.accounts = AccountStore(db)
        self.registry = DeviceRegistry(db)
        self.devices = DeviceStore(db)
        self.surfaces = SurfaceStore(db)
        self.sentinel = SentinelStore(db)
        self.server = ServerInfo(db)
        self.settings = SettingsStore(db)
        self.webos = WebosReads(db)
