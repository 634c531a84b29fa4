"""The hub's sender: outbound messages written queued (on a device, offline or not, or over
REST) are sent through their channel's provider once they reach the hub.

At most once: a message is claimed (``hub_comms_outbound.state = 'sending'``, committed) before
the provider is called, and only a failure that proves nothing went out (no connection, the
provider's 5xx or 429) is retried, with exponential backoff. A claim still 'sending' after
``lease_s`` belongs to a hub that stopped mid-send: the message may or may not have gone, so it
is marked failed ("outcome unknown") for a person to check, never sent again. A message on a
client's phone twice is worse than one a broker resends by hand; WAHA and Evolution take no
idempotency key that would make a blind retry safe.

The provider's answer is committed to the hub table first, then to the message record
(``recorded``): a hub that stops in between records it when it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from comms.providers import OutcomeUnknown, ProviderError, ProviderUnavailable
from comms.registry import provider_for
from core.errors import NotFound, VelocityError
from hub.comms_ingest import record_status

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger(__name__)

UNKNOWN_OUTCOME = ("outcome unknown: the hub stopped while sending; check the chat before "
                   "sending again")


class CommsSender:
    """An `async with` service owning the task that sends queued messages."""

    def __init__(self, hub: Hub, *, interval_s: float = 0.5, backoff_base_s: float = 2.0,
                 backoff_cap_s: float = 300.0, max_attempts: int = 6, lease_s: float = 120.0,
                 timeout_s: float = 20.0) -> None:
        self.hub = hub
        self.channels = hub.storage.channels
        self.interval_s, self.max_attempts, self.lease_s = interval_s, max_attempts, lease_s
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self._timeout_s = timeout_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CommsSender:
        self.http = httpx.AsyncClient(timeout=self._timeout_s)
        self._task = asyncio.create_task(self._run(), name="velocity-comms-sender")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.http.aclose()

    def poke(self) -> None:
        """Look for queued messages now rather than at the next interval."""
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.run_once()
                failures = 0
            except Exception as exc:  # the database away: wait longer each time, log once
                failures += 1
                if failures == 1:
                    log.warning("comms sender round failed, retrying with backoff: %r", exc)
            self._wake.clear()
            wait = min(30.0, self.interval_s * 2 ** failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def run_once(self) -> int:
        """One round: expire dead claims, record answers not yet recorded, send what is due;
        how many messages were sent or given up."""
        await self._expire_claims()
        done = await self._record_answers()
        for row in await self._due():
            await self._send(row)
            done += 1
        return done

    async def _expire_claims(self) -> None:
        await self.hub.storage.comms.expire_claims(UNKNOWN_OUTCOME, self.lease_s)

    async def _due(self) -> list[dict[str, Any]]:
        return await self.hub.storage.comms.due()

    async def _send(self, row: dict[str, Any]) -> None:
        store = self.hub.storage.comms
        attempts = await store.claim(row["tenant_id"], row["id"])
        if attempts is None:
            return  # another hub claimed it
        try:
            channel = await self.channels.get(row["channel_id"], row["tenant_id"])
            provider = provider_for(channel, self.http)
            provider_id = await provider.send_text(row["phone"], row["body"])
        except ProviderUnavailable as exc:
            if attempts < self.max_attempts:
                delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempts - 1))
                await store.retry_later(row["tenant_id"], row["id"], exc.message[:500], delay)
                return
            await self._fail(row, f"gave up after {attempts} attempts: {exc.message}")
        except (ProviderError, NotFound) as exc:
            await self._fail(row, exc.message)
        except Exception as exc:  # a bug must not leave the claim to look like a crash
            log.exception("sending message %s failed", row["id"])
            await self._fail(row, f"{OutcomeUnknown.code}: {exc!r}")
        else:
            await store.sent(row["tenant_id"], row["id"], provider_id)
        await self._record_answers()

    async def _fail(self, row: dict[str, Any], error: str) -> None:
        await self.hub.storage.comms.failed(row["tenant_id"], row["id"], error[:500])

    async def _record_answers(self) -> int:
        """Write the provider's answers the message records do not hold yet."""
        store = self.hub.storage.comms
        rows = await store.unrecorded_answers()
        for row in rows:
            tenant, message_id = row["tenant_id"], row["message_id"]
            try:
                if row["state"] == "sent":
                    await record_status(self.hub, tenant, message_id, "sent",
                                        {"provider_message_id": row["provider_message_id"]})
                    await self._apply_receipt(tenant, message_id, row["channel_id"],
                                              row["provider_message_id"])
                else:
                    await record_status(self.hub, tenant, message_id, "failed",
                                        {"error": row["last_error"]})
            except VelocityError as exc:
                log.warning("cannot record the answer for message %s: %s", message_id, exc)
            await store.recorded(tenant, message_id)
        return len(rows)

    async def _apply_receipt(self, tenant_id: str, message_id: str, channel_id: str,
                             provider_id: str) -> None:
        """A delivery report that arrived before the send was recorded (it is kept first by
        the webhook, and read here after the send is: one of the two always sees the other)."""
        status = await self.hub.storage.comms.receipt(channel_id, provider_id)
        if status is not None:
            await record_status(self.hub, tenant_id, message_id, status)
