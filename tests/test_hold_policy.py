"""The hold rules of the policy on their own: one claim at a time, a broker claims for
themselves, a live hold is the holder's (their senior's, a manager's), an expired one anyone's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import Conflict, PermissionDenied
from core.identity import Principal, Role
from hub.policy import check_write
from schema import collection
from schema.inventory import is_active, place_values, release_values, unit_view

HOLDS = collection("unit_holds")
JUNIOR = Principal("t1", "t1-junior", Role.JUNIOR_BROKER, team_id="north")
OTHER = Principal("t1", "t1-other", Role.JUNIOR_BROKER, team_id="south")
SENIOR = Principal("t1", "t1-senior", Role.SENIOR_BROKER, team_id="north")
DIRECTOR = Principal("t1", "t1-director", Role.SALES_DIRECTOR)
UNIT = {"id": "u1", "unit_no": "A-101", "project_id": "p1", "status": "AVAILABLE"}


def _hold(holder: str | None, *, hours: float = 24, team: str | None = "north",
          **extra: Any) -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    return {"tenant_id": "t1", "id": "u1", "unit_id": "u1", "holder_id": holder,
            "claims": [holder] if holder else [], "team_id": team, "expires_at": expires,
            **extra}


def _verdict(principal: Principal, before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    try:
        check_write(principal, HOLDS, before, after)
    except PermissionDenied as exc:
        return exc.code
    return "ok"


def test_one_claim_at_a_time_whoever_adds_the_second() -> None:
    held = _hold("t1-junior")
    both = {**held, "claims": ["t1-junior", "t1-other"]}
    for principal in (OTHER, JUNIOR, DIRECTOR):
        assert _verdict(principal, held, both) == "unit_held"
    assert _verdict(OTHER, None, both) == "unit_held"


def test_a_broker_claims_for_themselves_and_holder_and_claims_agree() -> None:
    assert _verdict(JUNIOR, None, _hold("t1-junior")) == "ok"
    assert _verdict(JUNIOR, None, _hold("t1-other")) == "not_owner"
    assert _verdict(DIRECTOR, None, _hold("t1-other")) == "ok"
    assert _verdict(JUNIOR, None, {**_hold("t1-junior"), "holder_id": None}) == (
        "hold_inconsistent")
    assert _verdict(JUNIOR, _hold("t1-junior"), {**_hold("t1-junior"), "unit_id": "u2"}) == (
        "hold_inconsistent")
    # a second hold document for the same unit would escape the arbitration
    assert _verdict(DIRECTOR, None, {**_hold("t1-junior"), "id": "another"}) == (
        "hold_inconsistent")


def test_a_live_hold_is_released_by_its_holder_their_senior_or_a_manager() -> None:
    held = _hold("t1-junior")
    released = {**held, "holder_id": None, "claims": []}
    assert {p.user_id: _verdict(p, held, released) for p in (JUNIOR, SENIOR, DIRECTOR, OTHER)
            } == {"t1-junior": "ok", "t1-senior": "ok", "t1-director": "ok",
                  "t1-other": "unit_held"}
    assert _verdict(OTHER, held, {**held, "note": "mine"}) == "unit_held"
    assert _verdict(OTHER, released, _hold("t1-other")) == "ok"  # released: anyone's


def test_an_expired_hold_may_be_taken_over() -> None:
    expired = _hold("t1-junior", hours=-1)
    assert not is_active(expired)
    taken = place_values(UNIT, expired, "t1-other", "south")
    assert _verdict(OTHER, expired, {**expired, **taken, "tenant_id": "t1"}) == "ok"
    live = _hold("t1-junior")
    assert _verdict(OTHER, live, {**live, **taken, "tenant_id": "t1"}) == "unit_held"


def test_placing_and_releasing_where_the_hold_is_known() -> None:
    with pytest.raises(Conflict, match="already held by t1-junior") as err:
        place_values(UNIT, _hold("t1-junior"), "t1-other", None)
    assert err.value.code == "unit_held"
    with pytest.raises(Conflict, match="SOLD, not available"):
        place_values({**UNIT, "status": "SOLD"}, None, "t1-other", None)
    values = place_values(UNIT, _hold("t1-junior"), "t1-junior", "north", hours=2)
    assert values["claims"] == ["t1-junior"] and values["holder_id"] == "t1-junior"
    with pytest.raises(Conflict, match="not held"):
        release_values({**_hold(None)})
    view = unit_view(UNIT, {**_hold("t1-junior"), "claims": ["t1-junior", "t1-other"]})
    assert (view["status"], view["contested"], view["hold"]["holder_id"]) == (
        "HELD", True, "t1-junior")
    assert unit_view(UNIT, _hold("t1-junior", hours=-1))["status"] == "AVAILABLE"
