"""Tenants, roles, users and devices: who is acting, and on whose behalf."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Roles, from most to least privileged."""

    ADMIN = "ADMIN"
    SALES_DIRECTOR = "SALES_DIRECTOR"
    SENIOR_BROKER = "SENIOR_BROKER"
    JUNIOR_BROKER = "JUNIOR_BROKER"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        """True when this role has every right ``other`` has."""
        return self.rank >= other.rank


_RANK = {
    Role.JUNIOR_BROKER: 1,
    Role.SENIOR_BROKER: 2,
    Role.SALES_DIRECTOR: 3,
    Role.ADMIN: 4,
}

MANAGERS = frozenset({Role.ADMIN, Role.SALES_DIRECTOR})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user (optionally acting through a paired device)."""

    tenant_id: str
    user_id: str
    role: Role
    team_id: str | None = None
    device_id: str | None = None

    @property
    def is_manager(self) -> bool:
        """Directors and admins see and set everything within their tenant."""
        return self.role in MANAGERS
