"""Read scope: which documents a principal's devices may receive (pure; also rendered as SQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.identity import Principal, Role
from schema import COLLECTIONS

OWNER_SCOPED = tuple(sorted(c.name for c in COLLECTIONS.values() if c.owner_scoped))
CANVAS = "canvas_pages"
GPU_REQUESTS = "gpu_requests"


def readers_of(collection: str, values: Mapping[str, Any]) -> list[str] | None:
    """The names that may read a document its collection shares by name (a canvas page not
    shared with the whole tenant): its owner, editors and viewers, and ``team:<id>`` for a
    page shared with its team. None: the owner and team rule alone decides (every other
    document). A GPU request is read by its owner alone (an Oracle answer is in the asker's
    scope). Kept as the document's ``readers`` column."""
    if collection == GPU_REQUESTS:
        return [values["owner_id"]] if values.get("owner_id") else []
    if collection != CANVAS or values.get("sharing") == "tenant":
        return None
    names = {values.get("owner_id"), *(values.get("editors") or ()),
             *(values.get("viewers") or ())}
    if values.get("sharing") == "team" and values.get("team_id"):
        names.add(f"team:{values['team_id']}")
    return sorted(n for n in names if n)


def reader_keys(principal: Principal) -> list[str]:
    """The names that stand for ``principal`` in a ``readers`` list."""
    return [principal.user_id] + ([f"team:{principal.team_id}"] if principal.team_id else [])


def may_read(principal: Principal, collection: str, owner_id: str | None,
             team_id: str | None, readers: Sequence[str] | None = None) -> bool:
    """Managers read the whole tenant; brokers read owner-scoped records that are theirs
    (seniors: also their team's), documents shared by name with them (``readers``), and every
    other document of the tenant."""
    if principal.is_manager:
        return True
    if readers is not None and not set(reader_keys(principal)) & set(readers):
        return False
    if collection not in OWNER_SCOPED:
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
    ``previous``, on the owner, team and readers the document had before its last scope
    change."""
    if principal.is_manager:
        return "TRUE", []
    owner, team, readers = (("prev_owner_id", "prev_team_id", "prev_readers") if previous
                            else ("owner_id", "team_id", "readers"))
    n = first_param
    cond = f"(NOT ({alias}.collection = ANY(${n}::text[])) OR {alias}.{owner} = ${n + 1}"
    params: list[object] = [list(OWNER_SCOPED), principal.user_id]
    if principal.role is Role.SENIOR_BROKER and principal.team_id is not None:
        cond += f" OR {alias}.{team} = ${n + 2}"
        params.append(principal.team_id)
    cond += (f") AND ({alias}.{readers} IS NULL OR {alias}.{readers} && "
             f"${n + len(params)}::text[])")
    params.append(reader_keys(principal))
    return f"({cond})", params


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
