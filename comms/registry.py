"""The providers by name: a channel's ``provider`` picks its adapter."""

from __future__ import annotations

import httpx

from comms.evolution import Evolution
from comms.providers import Channel, Provider
from comms.waha import Waha

PROVIDERS = ("waha", "evolution")


def provider_for(channel: Channel, http: httpx.AsyncClient) -> Provider:
    if channel.provider == "waha":
        return Waha(channel, http)
    if channel.provider == "evolution":
        return Evolution(channel, http)
    raise ValueError(f"unknown provider {channel.provider!r}: one of {PROVIDERS}")
