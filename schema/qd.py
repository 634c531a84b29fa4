"""A QD score reaches its person and its lead, on whichever replica writes it.

A score that names a lead but no person takes the lead's person; the lead's ``last_qd`` follows
its latest score. The edge applies this when it writes a score (`score_writes`), the hub after
it commits one (from a device that did not hold the lead, or its own REST writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def person_from_lead(score: Mapping[str, Any], lead: Mapping[str, Any] | None) -> str | None:
    """The person a score should be attached to and is not yet, else None."""
    if lead is not None and _live_lead_of(score, lead) and not score.get("person_id"):
        return lead.get("person_id")
    return None


def last_qd_change(score: Mapping[str, Any], lead: Mapping[str, Any] | None
                   ) -> dict[str, Any] | None:
    """The change the lead's latest score makes to it, else None."""
    if (lead is not None and _live_lead_of(score, lead) and score.get("score") is not None
            and not score.get("deleted") and lead.get("last_qd") != score["score"]):
        return {"last_qd": score["score"]}
    return None


def score_writes(score_id: str, values: Mapping[str, Any], lead: Mapping[str, Any] | None
                 ) -> list[tuple[str, str, dict[str, Any]]]:
    """The writes of a new score (the latest of its lead), given its lead as the writing replica
    holds it (None: not held): the score, with its person, then the lead's ``last_qd``."""
    score = dict(values)
    score["person_id"] = person_from_lead(score, lead) or score.get("person_id")
    writes: list[tuple[str, str, dict[str, Any]]] = [("qd_scores", score_id, score)]
    change = last_qd_change(score, lead)
    if change is not None and lead is not None:
        writes.append(("leads", str(lead["id"]), change))
    return writes


def _live_lead_of(score: Mapping[str, Any], lead: Mapping[str, Any]) -> bool:
    return (not lead.get("deleted") and score.get("lead_id") is not None
            and lead.get("id") == score["lead_id"])
