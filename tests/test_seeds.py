"""The synthetic CRM: deterministic for a seed, and every record validates."""

from __future__ import annotations

import pytest

from schema import collection, project
from seeds.generator import generate
from seeds.loader import load
from tests.hubkit import running_hub


def test_generator_is_deterministic_for_a_seed() -> None:
    assert generate("acme", people=60, seed=3).records == generate("acme", people=60,
                                                                   seed=3).records
    assert generate("acme", people=60, seed=3).records != generate("acme", people=60,
                                                                   seed=4).records


def test_every_generated_record_validates_and_references_exist() -> None:
    data = generate("acme", people=200, seed=11)
    ids = {(c, rid) for c, rid, _ in data.records}
    for coll_name, rid, values in data.records:
        record = project(collection(coll_name), rid, values)
        assert record.tenant_id == "acme"
        if hasattr(record, "person_id") and record.person_id is not None:
            assert ("people", record.person_id) in ids
    kinds = {v["kind"] for c, _, v in data.records if c == "interactions"}
    assert {"message", "call"} <= kinds
    for kind in ("accounts", "households", "relationships", "projects", "units", "leads",
                 "opportunities", "property_interests", "stage_history", "facts", "tasks",
                 "qd_scores", "comm_events", "transcript_segments", "memory_facts",
                 "calendar_events", "insights"):
        assert data.count(kind) > 0, kind


@pytest.mark.anyio
async def test_seeding_twice_does_not_duplicate() -> None:
    data = generate("acme", people=40, seed=5)
    async with running_hub() as server:
        first = await load(server.hub, data)
        second = await load(server.hub, data)
        assert first == len(data.records) and second == 0
        count = await server.hub.db.pool.fetchval(
            "SELECT count(*) FROM hub_documents WHERE tenant_id = 'acme'")
        assert count == len(data.records)
        people = await server.hub.db.pool.fetchval("SELECT count(*) FROM crm_people")
        assert people == data.count("people")


def test_every_record_has_a_creation_time_and_a_lead_its_latest_qd() -> None:
    data = generate("acme", people=60, seed=3)
    assert all(v.get("created_at") for _, _, v in data.records)
    latest: dict[str, tuple[str, int]] = {}
    for c, _, v in data.records:
        if c == "qd_scores":
            latest[v["lead_id"]] = max(latest.get(v["lead_id"], ("", 0)), (v["scored_at"],
                                                                           v["score"]))
    leads = {rid: v for c, rid, v in data.records if c == "leads"}
    assert latest and all(leads[lid].get("last_qd") == qd for lid, (_, qd) in latest.items())
    assert all("last_qd" not in v for lid, v in leads.items() if lid not in latest)
