"""Read scope: which documents a principal's devices may receive (pure; also rendered as SQL)."""

from __future__ import annotations

from core.identity import Principal, Role
from schema import COLLECTIONS

OWNER_SCOPED = tuple(sorted(c.name for c in COLLECTIONS.values() if c.owner_scoped))


def may_read(principal: Principal, collection: str, owner_id: str | None,
             team_id: str | None) -> bool:
    """Managers read the whole tenant; brokers read owner-scoped records that are theirs
    (seniors: also their team's) and every other collection of the tenant."""
    if principal.is_manager or collection not in OWNER_SCOPED:
        return True
    if owner_id == principal.user_id:
        return True
    return (
        principal.role is Role.SENIOR_BROKER
        and principal.team_id is not None
        and team_id == principal.team_id
    )


def scope_sql(principal: Principal, alias: str, first_param: int, *, previous: bool = False
              ) -> tuple[str, list[object]]:
    """The same rule as `may_read` as a SQL condition on ``alias`` (hub_documents); with
    ``previous``, on the owner and team the document had before its last scope change."""
    if principal.is_manager:
        return "TRUE", []
    owner, team = ("prev_owner_id", "prev_team_id") if previous else ("owner_id", "team_id")
    n = first_param
    cond = f"(NOT ({alias}.collection = ANY(${n}::text[])) OR {alias}.{owner} = ${n + 1}"
    params: list[object] = [list(OWNER_SCOPED), principal.user_id]
    if principal.role is Role.SENIOR_BROKER and principal.team_id is not None:
        cond += f" OR {alias}.{team} = ${n + 2}"
        params.append(principal.team_id)
    return cond + ")", params


def row_scope_sql(principal: Principal, table_collection: str, alias: str, first_param: int
                  ) -> tuple[str, list[object]]:
    """`may_read` as a SQL condition on a projection table's ``owner_id``/``team_id``."""
    if principal.is_manager or table_collection not in OWNER_SCOPED:
        return "TRUE", []
    n = first_param
    cond = f"({alias}.owner_id = ${n}"
    params: list[object] = [principal.user_id]
    if principal.role is Role.SENIOR_BROKER and principal.team_id is not None:
        cond += f" OR {alias}.team_id = ${n + 1}"
        params.append(principal.team_id)
    return cond + ")", params
