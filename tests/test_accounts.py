"""Accounts and credentials: role and status changes reaching open sync sessions on every hub,
tokens that refresh and end, login throttling, hashing off the event loop, the sealed secret."""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
import websockets

from core.errors import ConfigError
from core.identity import Principal, Role
from hub import accounts as accounts_module
from hub.server import HubServer
from hub.service import Hub
from hub.settings import HubSettings
from hub.signing import SEALED_ROW
from sync import protocol as p
from sync.record import RecordDoc
from tests import hubkit
from tests.hubkit import PASSWORD, login, pair_device, running_hub
from tests.test_hub_events import Stream

pytestmark = pytest.mark.anyio
DIRECTOR = Principal("t1", "t1-sales_director", Role.SALES_DIRECTOR)


async def _closed(device: hubkit.TestDevice) -> tuple[int, str]:
    """Wait until the hub closes the device's connection: its close code and reason."""
    assert device.ws is not None and device._reader is not None
    await asyncio.wait_for(device.ws.wait_closed(), 10)
    with suppress(websockets.ConnectionClosed):
        await device._reader
    return device.ws.close_code or 0, device.ws.close_reason or ""


async def test_demotion_and_disabling_reach_open_sessions_on_every_hub() -> None:
    async with running_hub() as a:
        second = Hub(HubSettings(database_url=a.hub.database_url, sandbox_workers=1))
        async with HubServer(second, host="127.0.0.1", port=0) as b, \
                httpx.AsyncClient(base_url=a.url) as http:
            await a.hub.writer.write_many(DIRECTOR, [
                ("leads", "l-other", {"tenant_id": "t1", "person_id": "p", "owner_id":
                                      "t1-junior2", "team_id": "south"}),
                ("opportunities", "o-mine", {"tenant_id": "t1", "person_id": "p", "owner_id":
                                             "t1-sales_director", "team_id": "north"})],
                create=True)
            director = await pair_device(a, "sales_director@t1.test", "t1-sales_director", 61)
            junior2 = await pair_device(a, "junior2@t1.test", "t1-junior2", 62)
            director.server = junior2.server = b  # both connect to the other hub process
            await director.connect()
            await junior2.connect()
            await director.wait_for(lambda: "leads/l-other" in director.docs)
            old_token = await login(a, "sales_director@t1.test")
            admin = await login(a, "admin@t1.test")

            r = await http.patch("/api/auth/users/t1-sales_director", headers=admin,
                                 json={"role": "JUNIOR_BROKER"})
            assert r.status_code == 200 and r.json()["role"] == "JUNIOR_BROKER"
            assert await _closed(director) == (p.CloseCode.AUTH, "scope_changed")
            r = await http.get("/api/auth/me", headers=old_token)
            assert (r.status_code, r.json()["error"]) == (401, "token_revoked")

            # Reconnecting with the cursor it had: it drops what a junior may not read, and the
            # hub judges its pushes as a junior's.
            director.items.clear()
            await director.connect()
            await director.wait_for(lambda: "leads/l-other" not in director.docs)
            state = await a.hub.db.pool.fetchval(
                "SELECT state FROM hub_documents WHERE guid = 'opportunities/o-mine'")
            doc = RecordDoc(director.doc("opportunities/o-mine").collection, "o-mine",
                            client_id=61, state=bytes(state))
            await director.push([p.PushItem("stage", "opportunities/o-mine",
                                            doc.write({"stage": "BOOKING"}))])
            await director.wait_for(lambda: "stage" in director.refusals)
            assert director.refusals["stage"].reason == "manager_only_field"

            r = await http.post("/api/auth/users/t1-junior2/disable", headers=admin)
            assert r.status_code == 200 and r.json()["active"] is False
            assert await _closed(junior2) == (p.CloseCode.AUTH, "user_inactive")
            with pytest.raises(ConnectionRefusedError, match="user_inactive"):
                await junior2.connect()
            r = await http.post("/api/auth/users/t1-junior2/enable", headers=admin)
            assert r.status_code == 200
            await junior2.connect()  # enabled again: the device works without re-pairing
            await junior2.close()
            await director.close()


async def _canvas_closed(ws: websockets.ClientConnection) -> str:
    """Read the canvas socket until the hub closes it: the close reason."""
    async def drain() -> None:
        with suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass
    await asyncio.wait_for(drain(), 10)
    return ws.close_reason or ""


async def test_a_role_change_or_disabling_closes_canvas_sockets_and_event_streams() -> None:
    async with running_hub() as a, running_hub(a.hub.database_url) as b, \
            httpx.AsyncClient(base_url=a.url) as http_a, \
            httpx.AsyncClient(base_url=b.url, timeout=None) as http_b:
        admin = await login(a, "admin@t1.test")
        for email, user_id, change, reason, closed in (
                ("senior_broker@t1.test", "t1-senior_broker", "role", "scope_changed", "scope"),
                ("junior_broker@t1.test", "t1-junior_broker", "disable", "user_inactive",
                 "disabled")):
            me = await login(b, email)
            r = await http_b.post("/api/oracle/v1/canvas-pages", headers=me,
                                  json={"values": {"title": "Plan"}})
            assert r.status_code == 201, r.text
            url = (b.url.replace("http", "ws") + f"/api/oracle/v1/ws/oracle/canvas/"
                   f"{r.json()['id']}?token={me['Authorization'][7:]}")
            async with websockets.connect(url) as canvas, Stream(http_b, me) as stream:
                r = await (http_a.patch(f"/api/auth/users/{user_id}", headers=admin,
                                        json={"role": "JUNIOR_BROKER"}) if change == "role"
                           else http_a.post(f"/api/auth/users/{user_id}/disable", headers=admin))
                assert r.status_code == 200
                assert await _canvas_closed(canvas) == reason
                await asyncio.wait_for(stream.ended.wait(), 10)
                assert stream.events[-1][:2] == ("closed", {"reason": closed})


async def test_tokens_refresh_once_and_end_on_logout_and_password_change() -> None:
    async with running_hub() as server, httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/auth/login", json={"email": "junior_broker@t1.test",
                                                     "password": PASSWORD})
        first = r.json()
        assert first["expires_in_s"] == 15 * 60
        bearer = {"Authorization": f"Bearer {first['access_token']}"}
        r = await http.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200
        second = r.json()
        new_bearer = {"Authorization": f"Bearer {second['access_token']}"}
        assert (await http.get("/api/auth/me", headers=new_bearer)).status_code == 200
        # A refresh token used twice was stolen or replayed: every token of the user ends.
        r = await http.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert (r.status_code, r.json()["error"]) == (401, "token_reused")
        for headers in (bearer, new_bearer):
            r = await http.get("/api/auth/me", headers=headers)
            assert (r.status_code, r.json()["error"]) == (401, "token_revoked")
        r = await http.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert (r.status_code, r.json()["error"]) == (401, "token_revoked")

        # Logout ends the access and refresh tokens.
        r = await http.post("/api/auth/login", json={"email": "junior_broker@t1.test",
                                                     "password": PASSWORD})
        tokens = r.json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.post("/api/auth/logout", headers=bearer)).status_code == 200
        assert (await http.get("/api/auth/me", headers=bearer)).status_code == 401
        r = await http.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401

        # A password change ends the tokens; the old password stops working.
        bearer = await login(server, "junior_broker@t1.test")
        r = await http.post("/api/auth/password", headers=bearer, json={
            "current_password": PASSWORD, "new_password": "short"})
        assert r.status_code == 422
        r = await http.post("/api/auth/password", headers=bearer, json={
            "current_password": PASSWORD, "new_password": "a new long passphrase"})
        assert r.status_code == 200
        assert (await http.get("/api/auth/me", headers=bearer)).status_code == 401
        r = await http.post("/api/auth/login", json={"email": "junior_broker@t1.test",
                                                     "password": PASSWORD})
        assert r.status_code == 401
        r = await http.post("/api/auth/login", json={"email": "junior_broker@t1.test",
                                                     "password": "a new long passphrase"})
        assert r.status_code == 200
        bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
        # An admin's reset does the same.
        admin = await login(server, "admin@t1.test")
        r = await http.post("/api/auth/users/t1-junior_broker/password", headers=admin,
                            json={"password": "reset by the admin"})
        assert r.status_code == 200
        assert (await http.get("/api/auth/me", headers=bearer)).status_code == 401
        r = await http.post("/api/auth/login", json={"email": "junior_broker@t1.test",
                                                     "password": "reset by the admin"})
        assert r.status_code == 200


async def test_login_is_throttled_per_account_and_per_address() -> None:
    async with running_hub(login_failures_per_account=3, login_failures_per_address=7
                           ) as server, httpx.AsyncClient(base_url=server.url) as http:
        async def attempt(email: str, password: str) -> httpx.Response:
            return await http.post("/api/auth/login", json={"email": email,
                                                            "password": password})

        for _ in range(3):
            assert (await attempt("junior_broker@t1.test", "wrong")).status_code == 401
        r = await attempt("junior_broker@t1.test", PASSWORD)  # even the right one, for now
        assert r.status_code == 429 and r.json()["error"] == "throttled"
        assert 0 < int(r.headers["retry-after"]) <= 15 * 60
        assert "account" in r.json()["detail"]
        # Another account from the same address still logs in, until the address has too many
        # failures (unknown emails count too).
        assert (await attempt("senior_broker@t1.test", PASSWORD)).status_code == 200
        for email in ("nobody@t1.test", "ghost@t1.test", "admin@t1.test", "senior_broker@t1.test"):
            assert (await attempt(email, "wrong")).status_code == 401
        r = await attempt("admin@t1.test", PASSWORD)
        assert r.status_code == 429 and "address" in r.json()["detail"]
        # Once the window has passed, the account and the address may try again.
        await server.hub.db.pool.execute(
            "UPDATE hub_login_failures SET window_start = now() - interval '1 hour'")
        assert (await attempt("junior_broker@t1.test", PASSWORD)).status_code == 200


async def test_unknown_emails_cost_a_hash_and_hashing_leaves_the_loop_free(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_hub(login_failures_per_address=1000) as server, \
            httpx.AsyncClient(base_url=server.url) as http:
        verified: list[str] = []
        threads: set[int] = set()
        real = accounts_module.verify_password

        def counting(password_hash: str, password: str) -> bool:
            verified.append(password_hash)
            threads.add(threading.get_ident())
            return real(password_hash, password)

        monkeypatch.setattr(accounts_module, "verify_password", counting)
        r = await http.post("/api/auth/login", json={"email": "nobody@t1.test",
                                                     "password": "guess"})
        assert r.status_code == 401 and len(verified) == 1  # a decoy hash was verified

        # 16 logins at once (each a real argon2 verification), then /health, from a client in
        # its own thread: /health answers while most logins are still being hashed.
        def client() -> tuple[int, int, list[int]]:
            return asyncio.run(_logins_then_health(server.url, 16))

        health, pending, statuses = await asyncio.to_thread(client)
        assert health == 200
        assert pending >= 8, f"only {pending} of 16 logins were still in flight"
        assert set(statuses) == {401}
        assert len(verified) == 17
        assert threading.get_ident() not in threads  # never on the event loop's thread


async def _logins_then_health(url: str, n: int) -> tuple[int, int, list[int]]:
    """Start ``n`` wrong logins, ask /health once they are sent: its status, how many logins
    had not finished when it answered, and the logins' statuses."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        logins = [asyncio.create_task(http.post("/api/auth/login", json={
            "email": f"user{k}@t1.test", "password": "wrong"})) for k in range(n)]
        await asyncio.sleep(0.2)  # every request is on its way
        health = await http.get("/health")
        pending = sum(not t.done() for t in logins)
        return health.status_code, pending, [r.status_code for r in await asyncio.gather(*logins)]


async def test_the_signing_secret_is_sealed_at_rest(tmp_path: Path) -> None:
    async with running_hub() as server:
        pool = server.hub.db.pool
        rows = dict(await pool.fetch("SELECT key, value FROM hub_settings"))
        assert "secret_key" not in rows
        assert server.hub.secret_key not in rows[SEALED_ROW]
        url = server.hub.database_url
    # A hub with another seal key cannot read it; an operator-supplied secret needs none.
    with pytest.raises(ConfigError, match="VELOCITY_SECRET_KEY"):
        async with Hub(HubSettings(database_url=url, sandbox_workers=1,
                                   token_seal_file=tmp_path / "other.key")):
            pass
    async with Hub(HubSettings(database_url=url, sandbox_workers=1,
                               token_seal_file=tmp_path / "other.key", secret_key="x" * 48)
                   ) as hub:
        assert hub.secret_key == "x" * 48
