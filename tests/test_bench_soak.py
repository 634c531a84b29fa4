"""The soak's final check (bench/soak.py) counts every kind of loss it claims to."""

from __future__ import annotations

from typing import Any

from bench.soak import check, losses
from bench.soak_worker import digest


def device(**over: Any) -> dict[str, Any]:
    tokens = [("a", "[d1.1]"), ("a", "[d1.2]")]
    return {"user_id": "u1", "created": ["a"], "tokens": tokens, "acked_created": ["a"],
            "acked_tokens": tokens, "integrity": ["ok"], "refusals": 0, "unsent": 0, **over}


def test_a_hub_holding_every_write_once_passes() -> None:
    hub = {"u1": [("a", "u1", "p", "[d1.1][d1.2]")]}
    out = check({1: device()}, hub)
    assert (out["writes_checked"], out["acknowledged"]) == (3, 3)
    assert losses({**out, "devices_not_converged": 0}) == 0


def test_lost_duplicated_unknown_refused_and_corrupt_are_counted() -> None:
    hub = {"u1": [("a", "u1", "p", "[d1.1][d1.1][d9.9]")]}
    out = check({1: device(created=["a", "b"], refusals=2, unsent=1,
                           integrity=["row 3 missing from index"])}, hub)
    assert (out["lost_leads"], out["lost_tokens"], out["duplicated_tokens"],
            out["unknown_tokens"]) == (1, 1, 1, 1)
    assert (out["refusals"], out["unsent_at_end"],
            out["replicas_failing_integrity_check"]) == (2, 1, 1)


def test_a_lead_under_another_owner_is_lost_for_its_writer() -> None:
    out = check({1: device(tokens=[])}, {"u2": [("a", "u2", "p", "")]})
    assert out["lost_leads"] == 1


def test_digest_ignores_row_order_and_sees_any_difference() -> None:
    rows = [("a", "u1", "p", "x"), ("b", "u1", "q", "")]
    assert digest(rows) == digest(rows[::-1])
    assert digest(rows) != digest([("a", "u1", "p", "x ")])


def test_an_acknowledged_write_missing_on_the_hub_is_a_lost_acknowledged_write() -> None:
    hub = {"u1": [("a", "u1", "p", "[d1.1]")]}
    out = check({1: device()}, hub)
    assert (out["lost_acknowledged"], out["lost_tokens"]) == (1, 1)
    unacked = check({1: device(acked_tokens=[("a", "[d1.1]")], unsent=1)}, hub)
    assert (unacked["lost_acknowledged"], unacked["lost_tokens"]) == (0, 1)
