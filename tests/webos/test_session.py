"""The WebOS session: login with an API account, HttpOnly/SameSite cookie, CSRF on every form
POST, logout ending the session and the account's API tokens, refusals as pages."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.hubkit import PASSWORD, login, running_hub

pytestmark = pytest.mark.anyio


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, name
    return match.group(1)


async def web_login(http: httpx.AsyncClient, email: str, password: str = PASSWORD
                    ) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={"email": email, "password": password,
                                           "nonce": _hidden(page.text, "nonce")})


async def test_login_cookie_csrf_and_logout() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/dashboard")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")

        r = await web_login(http, "admin@t1.test", "wrong password!")
        assert r.status_code == 401 and "wrong email or password" in r.text
        r = await http.post("/login", data={"email": "admin@t1.test", "password": PASSWORD,
                                            "nonce": "forged"})
        assert r.status_code == 303 and "expired" in r.headers["location"]

        api = await login(server, "admin@t1.test")
        r = await web_login(http, "admin@t1.test")
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        cookie = r.headers["set-cookie"]
        assert "velocity_session=" in cookie and "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()

        page = await http.get("/dashboard")
        assert page.status_code == 200
        token = _hidden(page.text, "csrf_token")
        # A POST without the session's CSRF token is refused and changes nothing.
        r = await http.post("/logout", data={"csrf_token": "x" * 64})
        assert r.status_code == 403 and "reload the page" in r.text, r.headers
        assert (await http.get("/dashboard")).status_code == 200

        r = await http.post("/logout", data={"csrf_token": token})
        assert r.status_code == 303
        assert (await http.get("/dashboard")).status_code == 303
        # The API's tokens of the account ended with the web session.
        assert (await http.get("/api/auth/me", headers=api)).status_code == 401


async def test_the_session_follows_the_account() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        await web_login(http, "junior_broker@t1.test")
        assert (await http.get("/dashboard")).status_code == 200
        await server.hub.db.pool.execute(
            "UPDATE hub_users SET active = false WHERE user_id = 't1-junior_broker'")
        r = await http.get("/dashboard")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")

        r = await http.get("/login?next=//evil.example/")
        assert 'value="/dashboard"' in r.text
