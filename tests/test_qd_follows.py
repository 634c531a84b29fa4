"""A QD score reaches its person and its lead's last QD: kiosk → hub → iPad, and the hub's REST."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from edge_agent.service import EdgeAgent
from tests.hubkit import login, running_hub
from tests.test_edge_e2e import _paired, _pending_zero, until

pytestmark = pytest.mark.anyio


def _score(lead_id: str | None, score: int, session: str) -> dict[str, object]:
    return {"lead_id": lead_id, "score": score, "session_id": session, "source": "sentinel",
            "scored_at": datetime.now(UTC).isoformat()}


async def test_a_score_tied_to_a_lead_reaches_its_person_on_every_replica(tmp_path: Path) -> None:
    async with running_hub() as server:
        owner = await _paired(server, tmp_path / "kiosk", "t1-senior_broker")
        stranger = await _paired(server, tmp_path / "kiosk2", "t1-junior2")
        director = await _paired(server, tmp_path / "ipad", "t1-sales_director")
        db = server.hub.db.pool
        async with EdgeAgent(owner) as kiosk, EdgeAgent(director) as ipad:
            person = await kiosk.write("people", None, {"full_name": "Zara Khan"})
            lead = await kiosk.write("leads", None, {"person_id": person.id})

            # The kiosk holds the lead: it attaches the score itself, in one local change.
            score = await kiosk.write("qd_scores", None, _score(lead.id, 91, "s-1"))
            assert score.person_id == person.id
            assert kiosk.replica.record("leads", lead.id).last_qd == 91
            await until(lambda: _pending_zero(kiosk))

            async def ipad_follows(score_id: str, qd: int) -> bool:
                doc = ipad.replica.document(f"qd_scores/{score_id}")
                return (not doc.is_empty and doc.project().person_id == person.id
                        and not ipad.replica.document(f"leads/{lead.id}").is_empty
                        and ipad.replica.record("leads", lead.id).last_qd == qd)
            await until(lambda: ipad_follows(score.id, 91))
            history = await ipad.replica.query(
                "SELECT score FROM temp.intel_qd_scores WHERE person_id = ?", (person.id,))
            assert history == [{"score": 91}]

            # A kiosk whose user may not read the lead scores a walk-in (naming the lead would
            # be refused: tests/test_sentinel_scope.py); the lead's owner tags the session to
            # the lead, and the hub attaches the score to the person and the lead's last QD.
            async with EdgeAgent(stranger) as walk_in, httpx.AsyncClient(
                    base_url=server.url, headers=await login(server, "senior_broker@t1.test")
                    ) as broker:
                with pytest.raises(Exception, match="no leads record"):
                    walk_in.replica.record("leads", lead.id)
                session = await walk_in.write("perception_sessions", None, {
                    "consent_id": "c-2", "started_at": datetime.now(UTC).isoformat()})
                blind = await walk_in.write("qd_scores", None, _score(None, 77, session.id))
                assert blind.person_id is None
                await until(lambda: _pending_zero(walk_in))
                r = await broker.post("/api/sentinel/tag-lead",
                                      json={"session_id": session.id, "lead_id": lead.id})
                assert r.status_code == 200 and r.json()["records_tagged"] == 2, r.text
                await until(lambda: ipad_follows(blind.id, 77))

                async def kiosk_sees_person() -> bool:
                    doc = walk_in.replica.document(f"qd_scores/{blind.id}")
                    return doc.project().person_id == person.id
                await until(kiosk_sees_person)
            assert await db.fetchval("SELECT last_qd FROM crm_leads WHERE id = $1",
                                     lead.id) == 77

            # The hub's own REST: a consented session tied only to the lead.
            async with httpx.AsyncClient(base_url=server.url,
                                         headers=await login(server, "sales_director@t1.test")
                                         ) as http:
                r = await http.post("/api/sentinel/consent", json={"session_id": "s-3",
                                                                    "lead_id": lead.id})
                assert r.status_code == 201, r.text
                r = await http.post("/api/sentinel/session/complete",
                                    json={"session_id": "s-3", "qd": 64})
                assert r.status_code == 201, r.text
                assert r.json()["person_id"] == person.id
                c360 = (await http.get(f"/api/crm/client-360/{person.id}")).json()
                assert sorted(q["score"] for q in c360["qd"]) == [64, 77, 91]
                assert [ld["last_qd"] for ld in c360["leads"]] == [64]
            await until(lambda: ipad_follows(r.json()["id"], 64))
