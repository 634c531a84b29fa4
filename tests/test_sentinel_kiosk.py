"""Sentinel sessions on a kiosk's local API: consent first, live QD on a websocket, results as
records, revocation purges. Real MediaPipe on a recording made from a real face photo."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets
from websockets.asyncio.client import connect

from edge_agent.device import IDENTITY_FILE
from edge_agent.local_api import create_local_app
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.server import free_port
from perception import samples

pytestmark = pytest.mark.anyio
SCENES = [{"start_s": 0, "end_s": 6, "label": "living room"},
          {"start_s": 6, "end_s": 12, "label": "sea-view deck"}]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.record_scenario(tmp_path_factory.mktemp("rec") / "visit.avi")


def offline_device(folder: Path, kind: str) -> EdgeSettings:
    folder.mkdir(parents=True)
    (folder / IDENTITY_FILE).write_text(json.dumps({
        "hub_url": "http://127.0.0.1:9", "device_id": f"d-{kind}", "tenant_id": "t1",
        "user_id": "u1", "kind": kind, "client_id": 4243}))
    return EdgeSettings(data_dir=folder, backoff_cap_s=0.2)


@asynccontextmanager
async def serving(agent: EdgeAgent) -> AsyncIterator[str]:
    """The agent's local API on a real loopback port (websockets need one)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_local_app(agent), host="127.0.0.1",
                                           port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "local API did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_kiosk_session_streams_live_qd_and_writes_records(tmp_path: Path,
                                                                recording: Path) -> None:
    async with EdgeAgent(offline_device(tmp_path / "kiosk", "kiosk")) as kiosk, \
            serving(kiosk) as host:
        auth = {"Authorization": f"Bearer {kiosk.token}"}
        async with httpx.AsyncClient(base_url=f"http://{host}", headers=auth) as http:
            person = (await http.post("/api/crm/people", json={
                "values": {"full_name": "Walk-in Visitor"}})).json()
            r = await http.post("/api/sentinel/sessions", json={"person_id": person["id"]})
            assert r.status_code == 422 and "consent_reference" in r.text  # consent first
            assert await kiosk.replica.query("SELECT id FROM temp.intel_biometric_consent") == []
            r = await http.post("/api/sentinel/sessions", json={
                "consent_reference": "form-0042", "person_id": person["id"],
                "asset_id": "video-palm-villa", "scene_map": SCENES,
                "recording": str(recording)})
            assert r.status_code == 201, r.text
            session_id = r.json()["session_id"]
            consent = kiosk.replica.record("consents", r.json()["consent_id"])
            assert consent.session_id == session_id and consent.revoked_at is None

            url = f"ws://{host}/api/sentinel/ws/perception?session_id={session_id}"
            with pytest.raises(websockets.InvalidStatus):
                async with connect(url + "&token=wrong"):
                    pass
            frames: list[dict[str, object]] = []
            async with connect(f"{url}&token={kiosk.token}") as ws:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if message["type"] == "frame":
                        frames.append(message)
                    if message["type"] == "ended":
                        break
                r = await http.post(f"/api/sentinel/sessions/{session_id}/complete")
                assert r.status_code == 200, r.text
                completed = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert completed["type"] == "completed"
            assert frames and all(1 <= int(str(f["qd"])) <= 100 for f in frames)
            assert any(f["face"] for f in frames) and not all(f["face"] for f in frames)
            outcome = r.json()
            assert outcome["qd"] == completed["qd"] and 1 <= outcome["qd"] <= 100
            assert outcome["frames_seen"] >= 100  # 12 s recorded at 10 fps, under the 15 fps cap
            assert any("(living room)" in s for s in outcome["signals"])
            assert any("(sea-view deck)" in s for s in outcome["signals"])
            session = kiosk.replica.record("perception_sessions", session_id)
            assert session.qd_final == outcome["qd"] and session.completed_at is not None
            history = (await http.get(f"/api/crm/qd/{person['id']}")).json()
            assert [h["score"] for h in history] == [outcome["qd"]]
            assert await kiosk.replica.pending_count() >= 4  # all of it waits for the hub

            r = await http.post("/api/sentinel/consent/revoke",
                                json={"person_id": person["id"]})
            assert r.json() == {"consents_revoked": 1, "results_purged": 2}
            assert (await http.get(f"/api/crm/qd/{person['id']}")).json() == []
            purged = kiosk.replica.record("qd_scores", outcome["qd_score_id"])
            assert purged.deleted and purged.score is None and purged.signals == []
            assert kiosk.replica.record("consents", consent.id).revoked_at is not None


async def test_revoking_mid_session_stops_it_and_nothing_is_scored(tmp_path: Path,
                                                                    recording: Path) -> None:
    async with EdgeAgent(offline_device(tmp_path / "kiosk", "kiosk")) as kiosk:
        assert kiosk.sentinel is not None
        from edge_agent.sentinel import SessionStart

        started = await kiosk.sentinel.start(SessionStart(consent_reference="tap-7",
                                                          recording=recording))
        session_id = started["session_id"]
        await kiosk.sentinel.revoke(session_id=session_id)
        from perception.consent import ConsentRequired

        with pytest.raises(ConsentRequired):
            await kiosk.sentinel.complete(session_id)
        assert await kiosk.replica.query(
            "SELECT id FROM temp.intel_qd_scores WHERE NOT deleted") == []
        assert kiosk.replica.record("perception_sessions", session_id).deleted


async def test_sentinel_is_off_on_an_ipad_and_bad_recordings_are_refused(
        tmp_path: Path, recording: Path) -> None:
    async with EdgeAgent(offline_device(tmp_path / "ipad", "ipad")) as ipad:
        transport = httpx.ASGITransport(app=create_local_app(ipad))
        auth = {"Authorization": f"Bearer {ipad.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://edge",
                                     headers=auth) as http:
            r = await http.post("/api/sentinel/sessions", json={"consent_reference": "x"})
            assert r.status_code == 409 and "VELOCITY_EDGE_SENTINEL" in r.text
    async with EdgeAgent(offline_device(tmp_path / "kiosk", "kiosk")) as kiosk:
        transport = httpx.ASGITransport(app=create_local_app(kiosk))
        auth = {"Authorization": f"Bearer {kiosk.token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://edge",
                                     headers=auth) as http:
            r = await http.post("/api/sentinel/sessions", json={
                "consent_reference": "x", "recording": str(tmp_path / "missing.avi")})
            assert r.status_code == 400, r.text
            assert await kiosk.replica.query("SELECT id FROM temp.intel_biometric_consent") == []
            r = await http.post("/api/sentinel/sessions", json={
                "consent_reference": "x", "recording": str(recording),
                "scene_map": [{"start_s": 5, "end_s": 2, "label": "backwards"}]})
            assert r.status_code == 422
            assert (await http.get("/api/sentinel/sessions/nope")).status_code == 404
