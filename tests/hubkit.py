"""Helpers for hub integration tests: a running hub, seeded users, and a protocol-level device."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import httpx
import websockets

from core.auth import DeviceKey
from core.identity import Role
from core.settings import SyncLimits
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc
from tests.pg import fresh_database

PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def running_hub(url: str | None = None, limits: SyncLimits | None = None,
                      **settings: object) -> AsyncIterator[HubServer]:
    """A hub with tenants t1 and t2 and one user per role in each (emails role@tenant.test)."""
    hub = Hub(HubSettings(database_url=url or await fresh_database(), sandbox_workers=1,
                          **settings), limits or SyncLimits())
    async with HubServer(hub, host="127.0.0.1", port=0) as server:
        for tenant in ("t1", "t2"):
            await hub.accounts.ensure_tenant(tenant, tenant.upper())
            for role in Role:
                await hub.accounts.create_user(
                    tenant, f"{role.value.lower()}@{tenant}.test", PASSWORD, role,
                    f"{role.value.title()} {tenant}", team_id="north",
                    user_id=f"{tenant}-{role.value.lower()}",
                )
            await hub.accounts.create_user(
                tenant, f"junior2@{tenant}.test", PASSWORD, Role.JUNIOR_BROKER, "Second Junior",
                team_id="south", user_id=f"{tenant}-junior2",
            )
        yield server


async def login(server: HubServer, email: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@dataclass
class TestDevice:
    """A device speaking the sync protocol directly, holding RecordDocs in memory."""

    server: HubServer
    device_id: str
    key: DeviceKey
    client_id: int
    cursor: int = 0
    docs: dict[str, RecordDoc] = field(default_factory=dict)
    acks: dict[str, int] = field(default_factory=dict)
    ack_log: list[tuple[str, int]] = field(default_factory=list)
    """Every ACK entry received, in order (an id acknowledged twice appears twice)."""
    refusals: dict[str, p.Refusal] = field(default_factory=dict)
    retries: dict[str, p.Refusal] = field(default_factory=dict)
    """The refusals (also in ``refusals``) with a retryable reason: the hub could not judge
    the update then."""
    error: p.Error | None = None
    """The ERROR the hub closed the session with, if any."""
    items: list[p.PullItem] = field(default_factory=list)
    batches: int = 0
    ws: websockets.ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    received: asyncio.Event = field(default_factory=asyncio.Event)

    def doc(self, guid: str) -> RecordDoc:
        if guid not in self.docs:
            coll, rid = guid.split("/")
            self.docs[guid] = RecordDoc(collection(coll), rid, client_id=self.client_id)
        return self.docs[guid]

    async def connect(self, **options: object) -> None:
        """Open a session (``options``: for `websockets.connect`, e.g. keepalive timings)."""
        self.ws = await websockets.connect(self.server.sync_url, max_size=None,
                                           **options)  # type: ignore[arg-type]
        await self.ws.send(p.encode(p.Hello(self.device_id, self.cursor, (self.client_id,))))
        challenge = p.decode(await self.ws.recv())
        if isinstance(challenge, p.Error):
            raise ConnectionRefusedError(f"{challenge.reason}: {challenge.message}")
        assert isinstance(challenge, p.Challenge), challenge
        await self.ws.send(p.encode(p.Auth(self.key.sign_challenge(challenge.nonce,
                                                                   self.device_id))))
        welcome = p.decode(await self.ws.recv())
        if isinstance(welcome, p.Error):
            raise ConnectionRefusedError(f"{welcome.reason}: {welcome.message}")
        assert isinstance(welcome, p.Welcome), welcome
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            msg = p.decode(frame)  # type: ignore[arg-type]
            if isinstance(msg, p.PullBatch):
                for item in msg.items:
                    if item.kind is p.ItemKind.REMOVE:
                        self.docs.pop(item.guid, None)
                    else:
                        self.doc(item.guid).apply(item.data)
                    self.items.append(item)
                self.cursor = msg.cursor
                self.batches += 1
            elif isinstance(msg, p.Ack):
                self.acks.update(dict(msg.entries))
                self.ack_log.extend(msg.entries)
            elif isinstance(msg, p.Refusal):
                self.refusals[msg.update_id] = msg
                if msg.reason in p.RETRYABLE_REASONS:
                    self.retries[msg.update_id] = msg
            elif isinstance(msg, p.Error):
                self.error = msg
            self.received.set()

    async def push(self, items: list[p.PushItem]) -> None:
        assert self.ws is not None
        await self.ws.send(p.encode(p.PushBatch(tuple(items))))

    async def write(self, guid: str, values: dict[str, object], update_id: str) -> bytes:
        update = self.doc(guid).write(values)
        await self.push([p.PushItem(update_id, guid, update)])
        return update

    async def wait_for(self, predicate: object, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (re-checked after every received frame)."""
        async def _loop() -> None:
            while not predicate():  # type: ignore[operator]
                self.received.clear()
                await self.received.wait()
        await asyncio.wait_for(_loop(), timeout)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await self._reader


async def pair_device(server: HubServer, user_email: str, user_id: str,
                      client_id: int, kind: str = "ipad") -> TestDevice:
    admin = await login(server, f"admin@{user_email.split('@')[1]}")
    key = DeviceKey.generate()
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/devices/pairing-codes", headers=admin,
                            json={"user_id": user_id, "device_kind": kind})
        r.raise_for_status()
        r = await http.post("/api/devices/pair", json={
            "code": r.json()["code"], "public_key": base64.b64encode(key.public_bytes).decode(),
            "name": f"{user_id} {kind}"})
        r.raise_for_status()
    return TestDevice(server, r.json()["device_id"], key, client_id)
