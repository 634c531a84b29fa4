"""The token a WebOS page hands its live script for the hub's Yjs endpoint.

The browser's session is an HttpOnly cookie the script cannot read, and the Yjs endpoint takes
the same bearer token as every other API client; so the page mints, for the signed-in user, an
ordinary access token with a short life (`LIVE_TOKEN_TTL_S`) bound to the account's token
version: a logout, password or role change ends it like any other token, and the endpoint judges
the page's sharing exactly as for any Yjs client. The script renews it before it expires (only a
reconnect needs it; an open connection is not cut when it expires).
"""

from __future__ import annotations

from core.auth import issue_token
from core.identity import Principal
from hub.service import Hub

LIVE_TOKEN_TTL_S = 10 * 60
RENEW_EVERY_S = LIVE_TOKEN_TTL_S // 2


async def live_token(hub: Hub, principal: Principal) -> str:
    """A short-lived access token for the signed-in user (their live canvas connection)."""
    user = await hub.accounts.caller(principal.tenant_id, principal.user_id)
    return issue_token(user.principal, hub.secret_key, LIVE_TOKEN_TTL_S, user.token_version)
