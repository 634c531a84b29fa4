"""Holds on units, the same on the hub and on a device: what placing or releasing one writes,
and the status a unit shows with its hold."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import Conflict

HOLDS = "unit_holds"
DEFAULT_HOLD_HOURS = 48
MAX_HOLD_HOURS = 14 * 24
SELLABLE = "AVAILABLE"


def is_active(hold: Mapping[str, Any] | None, now: datetime | None = None) -> bool:
    """Whether ``hold`` (a row or record content) holds its unit now."""
    if not hold or not hold.get("holder_id"):
        return False
    expires = hold.get("expires_at")
    if expires is None:
        return True
    when = expires if isinstance(expires, datetime) else datetime.fromisoformat(str(expires))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when > (now or datetime.now(UTC))


def unit_view(unit: Mapping[str, Any], hold: Mapping[str, Any] | None) -> dict[str, Any]:
    """A unit with its live hold: ``status`` is HELD while an available unit has one, and
    ``contested`` is true while a device holds two claims the hub has not arbitrated yet."""
    out = dict(unit)
    active = is_active(hold)
    claims = list((hold or {}).get("claims") or ())
    out["hold"] = ({k: hold.get(k) for k in ("holder_id", "lead_id", "person_id", "held_at",
                                              "expires_at", "note")}
                   if hold is not None and active else None)
    out["contested"] = len(claims) > 1
    if active and unit.get("status") == SELLABLE:
        out["status"] = "HELD"
    return out


def place_values(unit: Mapping[str, Any], current: Mapping[str, Any] | None, user_id: str,
                 team_id: str | None, *, hours: int = DEFAULT_HOLD_HOURS,
                 lead_id: str | None = None, person_id: str | None = None,
                 note: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The values that place ``user_id``'s hold on ``unit`` over the hold as it stands
    (``current``, None when the unit was never held); a unit held by someone else, or not for
    sale, is a `Conflict` here and now (the hub arbitrates holds placed apart, offline)."""
    now = now or datetime.now(UTC)
    if unit.get("status") != SELLABLE:
        raise Conflict(f"unit {unit.get('unit_no') or unit.get('id')} is {unit.get('status')}, "
                       "not available: it cannot be held", code="unit_not_available")
    if is_active(current, now) and current is not None and current.get("holder_id") != user_id:
        raise Conflict(f"unit {unit.get('unit_no') or unit.get('id')} is already held by "
                       f"{current.get('holder_id')} until {current.get('expires_at')}: ask them "
                       "or a SALES_DIRECTOR to release it", code="unit_held")
    if not 1 <= hours <= MAX_HOLD_HOURS:
        raise Conflict(f"a hold lasts 1 to {MAX_HOLD_HOURS} hours, not {hours}",
                       code="hold_too_long")
    return {"unit_id": unit["id"], "project_id": unit.get("project_id"),
            "holder_id": user_id, "claims": [user_id], "owner_id": user_id,
            "team_id": team_id, "lead_id": lead_id, "person_id": person_id,
            "held_at": now.isoformat(), "expires_at": (now + timedelta(hours=hours)).isoformat(),
            "released_at": None, "note": note}


def release_values(current: Mapping[str, Any] | None, now: datetime | None = None
                   ) -> dict[str, Any]:
    """The values that release the hold ``current``; a unit not held is a `Conflict`."""
    if current is None or not current.get("holder_id"):
        raise Conflict("this unit is not held", code="not_held")
    return {"holder_id": None, "claims": [], "released_at": (now or datetime.now(UTC)
                                                             ).isoformat()}
