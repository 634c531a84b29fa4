"""Sentinel across devices: a kiosk's QD reaches the hub and the broker's iPad; the hub's
Sentinel routes; a revocation made on the kiosk purges results made anywhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.ids import new_id
from edge_agent.device import pair
from edge_agent.sentinel import SessionStart
from edge_agent.service import EdgeAgent
from edge_agent.settings import EdgeSettings
from hub.server import HubServer
from perception import samples
from tests.hubkit import login, running_hub
from tests.test_edge_e2e import until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.record_scenario(tmp_path_factory.mktemp("rec") / "visit.avi")


async def _paired(server: HubServer, folder: Path, user_id: str, kind: str) -> EdgeSettings:
    admin = await login(server, "admin@t1.test")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/devices/pairing-codes", headers=admin,
                            json={"user_id": user_id, "device_kind": kind})
        code = r.json()["code"]
    await pair(folder, server.url, code, folder.name)
    return EdgeSettings(data_dir=folder, backoff_cap_s=0.5)


async def test_kiosk_qd_syncs_and_a_kiosk_revocation_purges_everywhere(
        tmp_path: Path, recording: Path) -> None:
    async with running_hub() as server:
        ipad_settings = await _paired(server, tmp_path / "ipad", "t1-senior_broker", "ipad")
        kiosk_settings = await _paired(server, tmp_path / "kiosk", "t1-senior_broker", "kiosk")
        broker = await login(server, "senior_broker@t1.test")
        async with EdgeAgent(ipad_settings) as ipad, EdgeAgent(kiosk_settings) as kiosk, \
                httpx.AsyncClient(base_url=server.url, headers=broker) as http:
            assert ipad.sentinel is None and kiosk.sentinel is not None
            person = await ipad.write("people", None, {"full_name": "Aarav Mehta"})
            lead = await ipad.write("leads", None, {"person_id": person.id})

            async def kiosk_has_lead() -> bool:
                return any(d.guid == f"leads/{lead.id}" for d in kiosk.replica.documents())
            await until(kiosk_has_lead)

            # A session on the kiosk, for the lead.
            started = await kiosk.sentinel.start(SessionStart(
                consent_reference="form-1", person_id=person.id, lead_id=lead.id,
                recording=recording))
            outcome = await kiosk.sentinel.complete(started["session_id"], at_end=True)
            assert outcome["frames_seen"] == 120 and outcome["frames_with_face"] > 60
            assert outcome["qd"] > 10  # the visitor smiled and leaned in: not the floor

            async def hub_has_score() -> bool:
                r = await http.get(f"/api/sentinel/qd-score/{lead.id}")
                return r.status_code == 200 and r.json()["latest"] is not None
            await until(hub_has_score)
            qd = (await http.get(f"/api/sentinel/qd-score/{lead.id}")).json()
            assert qd["latest"]["score"] == outcome["qd"]
            assert qd["latest"]["session_id"] == started["session_id"]

            async def ipad_has_score() -> bool:
                rows = await ipad.replica.query(
                    "SELECT score FROM temp.intel_qd_scores WHERE NOT deleted")
                return rows == [{"score": outcome["qd"]}]
            await until(ipad_has_score)

            # The hub's routes: scoring needs consent; a consented session completes.
            other = new_id()
            r = await http.post("/api/sentinel/session/complete",
                                json={"session_id": other, "qd": 64})
            assert r.status_code == 403 and r.json()["error"] == "consent_required"
            r = await http.post("/api/sentinel/consent", json={"session_id": other,
                                                                "person_id": person.id})
            assert r.status_code == 201, r.text
            assert (await http.post("/api/sentinel/consent",
                                    json={"session_id": other})).status_code == 409
            r = await http.post("/api/sentinel/session/complete", json={
                "session_id": other, "qd": 64, "signals": ["smile at 00:12"]})
            assert r.status_code == 201, r.text
            assert r.json()["person_id"] == person.id and r.json()["lead_id"] is None
            history = (await http.get(f"/api/sentinel/qd-score/{lead.id}")).json()["history"]
            assert sorted(h["score"] for h in history) == sorted([outcome["qd"], 64])

            # A walk-in's session, tagged to the lead afterwards.
            walk_in = await kiosk.sentinel.start(SessionStart(consent_reference="tap-2",
                                                              recording=recording))
            walk_outcome = await kiosk.sentinel.complete(walk_in["session_id"])  # stopped now

            async def hub_has_session() -> bool:
                r = await http.post("/api/sentinel/tag-lead", json={
                    "session_id": walk_in["session_id"], "lead_id": lead.id})
                return r.status_code == 200 and r.json()["records_tagged"] == 3
            await until(hub_has_session)
            history = (await http.get(f"/api/sentinel/qd-score/{lead.id}")).json()["history"]
            assert walk_outcome["qd_score_id"] in {h["id"] for h in history}
            assert (await http.post("/api/sentinel/tag-lead", json={
                "session_id": "nope", "lead_id": lead.id})).status_code == 404
            bad = await http.post("/api/sentinel/consent/revoke", json={})
            assert bad.status_code == 422

            # The visitor revokes at the kiosk: the kiosk holds only its own sessions' results,
            # the hub purges the person's results made elsewhere too, and it all syncs.
            async def kiosk_has_tag() -> bool:
                rows = await kiosk.replica.query(
                    "SELECT person_id FROM temp.intel_perception_sessions WHERE id = ?",
                    (walk_in["session_id"],))
                return rows == [{"person_id": person.id}]
            await until(kiosk_has_tag)
            await kiosk.sentinel.revoke(person_id=person.id)

            async def purged_everywhere() -> bool:
                hub_rows = (await http.get(f"/api/sentinel/qd-score/{lead.id}")).json()
                ipad_rows = await ipad.replica.query(
                    "SELECT id FROM temp.intel_qd_scores WHERE NOT deleted")
                live = await server.hub.db.pool.fetchval(  # the kiosk pushes one per consent
                    "SELECT count(*) FROM intel_biometric_consent WHERE person_id = $1 AND "
                    "revoked_at IS NULL", person.id)
                return hub_rows["history"] == [] and ipad_rows == [] and live == 0
            await until(purged_everywhere)
            rows = await server.hub.db.pool.fetch(
                "SELECT score, signals, deleted FROM intel_qd_scores WHERE person_id = $1",
                person.id)
            assert len(rows) == 3
            assert all(r["deleted"] and r["score"] is None and not r["signals"] for r in rows)
            consents = await server.hub.db.pool.fetch(
                "SELECT revoked_at FROM intel_biometric_consent WHERE person_id = $1", person.id)
            assert consents and all(c["revoked_at"] is not None for c in consents)
