"""The lead-stage role rule: which roles may move a lead to which stages, on REST and sync alike."""

from __future__ import annotations

import pytest

from core.errors import PermissionDenied
from core.identity import Principal, Role
from hub.policy import check_write
from schema import collection
from tests.hubkit import pair_device, running_hub

LEADS = collection("leads")


def _as(role: Role) -> Principal:
    return Principal("t1", "u1", role, team_id="north")


def _lead(stage: str) -> dict[str, object]:
    return {"tenant_id": "t1", "owner_id": "u1", "person_id": "p1", "stage": stage}


@pytest.mark.parametrize(("role", "old", "new", "allowed"), [
    (Role.JUNIOR_BROKER, "NEW", "SITE_VISIT", True),
    (Role.JUNIOR_BROKER, "SITE_VISIT", "LOST", True),
    (Role.JUNIOR_BROKER, "SITE_VISIT", "NEGOTIATION", False),
    (Role.JUNIOR_BROKER, "NEGOTIATION", "LOST", False),
    (Role.SENIOR_BROKER, "SITE_VISIT", "NEGOTIATION", True),
    (Role.SENIOR_BROKER, "NEGOTIATION", "WON", False),
    (Role.SENIOR_BROKER, "WON", "NEGOTIATION", False),
    (Role.SALES_DIRECTOR, "NEGOTIATION", "WON", True),
    (Role.ADMIN, "WON", "QUALIFIED", True),
])
def test_each_role_moves_a_lead_only_between_its_stages(role: Role, old: str, new: str,
                                                        allowed: bool) -> None:
    change = lambda: check_write(_as(role), LEADS, _lead(old), _lead(new))  # noqa: E731
    if allowed:
        change()
    else:
        with pytest.raises(PermissionDenied) as refused:
            change()
        assert refused.value.code == "lead_stage_forbidden"


def test_a_new_lead_starts_only_at_a_stage_its_creator_may_set() -> None:
    check_write(_as(Role.JUNIOR_BROKER), LEADS, None, _lead("CONTACTED"))
    with pytest.raises(PermissionDenied, match="WON"):
        check_write(_as(Role.JUNIOR_BROKER), LEADS, None, _lead("WON"))


@pytest.mark.anyio
async def test_the_rule_holds_on_sync_and_on_the_hubs_own_writes() -> None:
    async with running_hub() as server:
        junior = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 4001)
        await junior.connect()
        lead = {"tenant_id": "t1", "person_id": "p1", "owner_id": "t1-junior_broker"}
        await junior.write("leads/l1", {**lead, "stage": "SITE_VISIT"}, "j-1")
        await junior.write("leads/l1", {"stage": "WON"}, "j-2")
        await junior.wait_for(lambda: len(junior.acks) + len(junior.refusals) == 2)
        assert "j-1" in junior.acks
        assert junior.refusals["j-2"].reason == "lead_stage_forbidden"
        await junior.close()
        principal = Principal("t1", "t1-junior_broker", Role.JUNIOR_BROKER, team_id="north")
        with pytest.raises(PermissionDenied, match="NEGOTIATION"):
            await server.hub.writer.write(principal, "leads", "l1", {"stage": "NEGOTIATION"},
                                          create=False)
        assert await server.hub.db.pool.fetchval(
            "SELECT stage FROM crm_leads WHERE id = 'l1'") == "SITE_VISIT"
