"""Helpers of the comms tests: a channel configured on a running hub against a stand-in."""

from __future__ import annotations

import httpx

from hub.server import HubServer
from tests.hubkit import login
from tests.standins.evolution import EvolutionStandIn
from tests.standins.waha import WahaStandIn


async def waha_channel(server: HubServer, standin: WahaStandIn, url: str, *,
                       channel_id: str = "wa-main", owner_id: str = "t1-junior_broker") -> None:
    """Configure ``standin`` (served at ``url``) as a t1 channel; its webhooks go to the hub."""
    await _put(server, {"channel_id": channel_id, "provider": "waha",
                        "account": standin.session, "base_url": url,
                        "api_key": standin.api_key, "webhook_secret": standin.hmac_key,
                        "owner_id": owner_id})
    standin.webhook_url = f"{server.url}/api/comms/webhooks/waha?channel={channel_id}"


async def evolution_channel(server: HubServer, standin: EvolutionStandIn, url: str, *,
                            channel_id: str = "evo-main", owner_id: str = "t1-junior_broker"
                            ) -> None:
    await _put(server, {"channel_id": channel_id, "provider": "evolution",
                        "account": standin.instance, "base_url": url,
                        "api_key": standin.api_key, "webhook_secret": standin.webhook_secret,
                        "owner_id": owner_id})
    standin.webhook_url = f"{server.url}/api/comms/webhooks/evolution?channel={channel_id}"


async def _put(server: HubServer, channel: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=server.url,
                                 headers=await login(server, "admin@t1.test")) as http:
        r = await http.patch("/api/comms/settings", json=channel)
        assert r.status_code == 200, r.text
