"""The SQL the WebOS pages need beyond `hub.api.crm`'s row reads: aggregates over the projection
in the caller's tenant and read scope (`hub.scope.row_scope_sql`)."""

from __future__ import annotations

from typing import Any

from core.identity import Principal
from hub.scope import row_scope_sql
from hub.service import Hub
from schema import collection

QD_EDGES = tuple(range(0, 101, 10))


async def grouped(hub: Hub, principal: Principal, coll_name: str, key_sql: str, agg_sql: str,
                  where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[tuple[str, float]]:
    """(key, aggregate) per group of one projection table in the caller's tenant and scope."""
    table = collection(coll_name).table
    scope, scope_params = row_scope_sql(principal, coll_name, "t", len(params) + 2)
    rows = await hub.db.pool.fetch(
        f"SELECT {key_sql} AS k, {agg_sql} AS v FROM {table} t WHERE t.tenant_id = $1 AND NOT "
        f"t.deleted AND ({where}) AND {scope} GROUP BY 1 ORDER BY 2 DESC, 1",
        principal.tenant_id, *params, *scope_params)
    return [(str(r["k"]), float(r["v"] or 0)) for r in rows]


async def count(hub: Hub, principal: Principal, coll_name: str, where: str = "TRUE",
                params: tuple[Any, ...] = ()) -> int:
    table = collection(coll_name).table
    scope, scope_params = row_scope_sql(principal, coll_name, "t", len(params) + 2)
    n: int = await hub.db.pool.fetchval(
        f"SELECT count(*) FROM {table} t WHERE t.tenant_id = $1 AND NOT t.deleted AND ({where})"
        f" AND {scope}", principal.tenant_id, *params, *scope_params)
    return n


async def qd_histogram(hub: Hub, principal: Principal) -> list[int]:
    """How many QD scores fall in each bucket of `QD_EDGES` (the last one includes 100)."""
    groups = dict(await grouped(hub, principal, "qd_scores",
                                "LEAST(floor(t.score / 10.0)::int, 9)", "count(*)",
                                "t.score IS NOT NULL"))
    return [int(groups.get(str(i), 0)) for i in range(len(QD_EDGES) - 1)]


async def recent_activity(hub: Hub, principal: Principal, limit: int = 12
                          ) -> list[dict[str, Any]]:
    """The newest interactions and stage moves in scope, newest first, with the client's name
    (the newest rows are picked first and only they are joined to names)."""
    out: list[dict[str, Any]] = []
    people, leads = collection("people").table, collection("leads").table
    scope, sp = row_scope_sql(principal, "interactions", "t", 3)
    for r in await hub.db.pool.fetch(
            f"SELECT n.*, p.full_name FROM (SELECT t.tenant_id, t.occurred_at AS at, t.kind, "
            f"t.summary, t.person_id FROM {collection('interactions').table} t WHERE "
            f"t.tenant_id = $1 AND NOT t.deleted AND {scope} ORDER BY t.occurred_at DESC "
            f"LIMIT $2) n LEFT JOIN {people} p ON p.tenant_id = n.tenant_id AND p.id = "
            f"n.person_id", principal.tenant_id, limit, *sp):
        out.append({"at": r["at"], "kind": r["kind"], "summary": r["summary"] or "",
                    "person_id": r["person_id"], "name": r["full_name"] or r["person_id"]})
    scope, sp = row_scope_sql(principal, "stage_history", "t", 3)
    for r in await hub.db.pool.fetch(
            f"SELECT n.*, l.person_id, p.full_name FROM (SELECT t.tenant_id, t.lead_id, "
            f"t.changed_at AS at, t.from_stage, t.to_stage FROM "
            f"{collection('stage_history').table} t WHERE t.tenant_id = $1 AND NOT t.deleted "
            f"AND {scope} ORDER BY t.changed_at DESC LIMIT $2) n LEFT JOIN {leads} l ON "
            f"l.tenant_id = n.tenant_id AND l.id = n.lead_id LEFT JOIN {people} p ON "
            f"p.tenant_id = n.tenant_id AND p.id = l.person_id", principal.tenant_id, limit, *sp):
        out.append({"at": r["at"], "kind": "stage",
                    "summary": f"{r['from_stage'] or '—'} → {r['to_stage']}",
                    "person_id": r["person_id"], "name": r["full_name"] or "lead"})
    out.sort(key=lambda e: e["at"], reverse=True)
    return out[:limit]
