"""Sending over HTTP with httpx, with the provider's answer turned into the three error kinds."""

from __future__ import annotations

from typing import Any

import httpx

from comms.providers import OutcomeUnknown, ProviderRefused, ProviderUnavailable


async def post_json(http: httpx.AsyncClient, url: str, body: dict[str, Any],
                    headers: dict[str, str]) -> Any:
    """POST ``body``; the JSON answer of a 2xx, else the matching provider error."""
    try:
        r = await http.post(url, json=body, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderUnavailable(f"cannot reach the provider at {url}: {exc!r}") from exc
    except httpx.HTTPError as exc:
        raise OutcomeUnknown(f"no answer from {url} after sending: {exc!r}") from exc
    if r.status_code == 429 or r.status_code >= 500:
        raise ProviderUnavailable(f"the provider answered {r.status_code}: {r.text[:200]}")
    if r.status_code >= 400:
        raise ProviderRefused(f"the provider refused the message ({r.status_code}): "
                              f"{r.text[:200]}")
    try:
        return r.json()
    except ValueError as exc:
        raise OutcomeUnknown(f"the provider accepted but answered no JSON: {r.text[:200]}"
                             ) from exc
