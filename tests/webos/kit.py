"""Helpers for WebOS tests: a signed-in browser-like HTTP client and a small seeded CRM."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from core.identity import Principal, Role
from hub.server import HubServer
from hub.store import create_many
from tests.hubkit import PASSWORD

ROLES = ("admin", "sales_director", "senior_broker", "junior_broker")


def hidden(html: str, name: str) -> str:
    """The value of the first hidden input called ``name`` in a page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1)


async def web_login(http: httpx.AsyncClient, email: str, password: str = PASSWORD
                    ) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={"email": email, "password": password,
                                           "nonce": hidden(page.text, "nonce")})


@asynccontextmanager
async def signed_in(server: HubServer, email: str
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client holding a WebOS session for ``email``, and the session's CSRF token."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await web_login(http, email)
        assert r.status_code == 303, r.text
        page = await http.get("/dashboard")
        yield http, hidden(page.text, "csrf_token")


async def seed_crm(server: HubServer) -> None:
    """t1: a client and lead of the junior broker (team north), one of junior2 (south), QD
    scores, an interaction, a consent with its session."""
    director = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)
    mine = {"tenant_id": "t1", "owner_id": "t1-junior_broker", "team_id": "north"}
    other = {"tenant_id": "t1", "owner_id": "t1-junior2", "team_id": "south"}
    await create_many(server.hub.writer, director, [
        ("people", "c-mine", {**mine, "full_name": "Asha Mehta", "city": "Pune",
                              "segment": "hni", "email": "asha@example.test"}),
        ("people", "c-other", {**other, "full_name": "Vikram Rao", "city": "Dubai",
                               "segment": "nri"}),
        ("leads", "l-mine", {**mine, "person_id": "c-mine", "stage": "QUALIFIED",
                             "source": "website", "last_qd": 71}),
        ("leads", "l-other", {**other, "person_id": "c-other", "stage": "NEW",
                              "source": "referral"}),
        ("opportunities", "o-mine", {**mine, "person_id": "c-mine", "stage": "PROPOSAL",
                                     "value": 25_000_000}),
        ("qd_scores", "q1", {**mine, "person_id": "c-mine", "score": 55,
                             "scored_at": "2026-11-01T10:00:00Z"}),
        ("qd_scores", "q2", {**mine, "person_id": "c-mine", "score": 71,
                             "scored_at": "2026-11-08T10:00:00Z"}),
        ("interactions", "i1", {**mine, "person_id": "c-mine", "kind": "call",
                                "occurred_at": "2026-11-08T11:00:00Z",
                                "summary": "Asked for a site visit"}),
        ("facts", "f1", {**mine, "person_id": "c-mine", "kind": "budget",
                         "value": "2.5 Cr"}),
        ("property_interests", "pi1", {**mine, "person_id": "c-mine",
                                       "configuration": "3BHK", "level": 4}),
        ("consents", "k1", {**mine, "session_id": "s-1", "person_id": "c-mine",
                            "granted_at": "2026-11-08T10:00:00Z"}),
        ("perception_sessions", "s-1", {**mine, "person_id": "c-mine", "consent_id": "k1",
                                        "asset_id": "kiosk-pune-1", "qd_final": 71,
                                        "started_at": "2026-11-08T10:00:00Z"}),
    ])
