"""The WebOS pages' read models beyond `hub.storage.projection`'s rows: aggregates over the
projection in the caller's tenant and read scope (`hub.scope.row_scope_sql`)."""

from __future__ import annotations

from typing import Any

from core.identity import Principal
from hub.database import Database
from hub.scope import row_scope_sql
from schema import collection

QD_EDGES = tuple(range(0, 101, 10))
Groups = list[tuple[str, float]]
_SHOWROOM = "coalesce(t.asset_id, 'unassigned')"
_SCORED_VISITOR = "t.person_id IS NOT NULL AND t.score IS NOT NULL"


class WebosReads:
    """Named aggregates of the dashboard, contacts and Sentinel pages."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _grouped(self, principal: Principal, coll_name: str, key_sql: str, agg_sql: str,
                       where: str = "TRUE") -> Groups:
        """(key, aggregate) per group of one projection table in the caller's tenant and
        scope, the largest first."""
        table = collection(coll_name).table
        scope, scope_params = row_scope_sql(principal, coll_name, "t", 2)
        rows = await self._db.pool.fetch(
            f"SELECT {key_sql} AS k, {agg_sql} AS v FROM {table} t WHERE t.tenant_id = $1 AND "
            f"NOT t.deleted AND ({where}) AND {scope} GROUP BY 1 ORDER BY 2 DESC, 1",
            principal.tenant_id, *scope_params)
        return [(str(r["k"]), float(r["v"] or 0)) for r in rows]

    async def people_by_city(self, principal: Principal) -> Groups:
        return await self._grouped(principal, "people", "t.city", "count(*)",
                                   "t.city IS NOT NULL")

    async def people_by_segment(self, principal: Principal) -> Groups:
        return await self._grouped(principal, "people", "t.segment", "count(*)",
                                   "t.segment IS NOT NULL")

    async def value_by_stage(self, principal: Principal) -> Groups:
        """The summed value of the opportunities at each stage."""
        return await self._grouped(principal, "opportunities", "t.stage", "sum(t.value)")

    async def leads_by_source(self, principal: Principal) -> Groups:
        return await self._grouped(principal, "leads", "coalesce(t.source, 'unknown')",
                                   "count(*)")

    async def sessions_by_showroom(self, principal: Principal) -> Groups:
        """Perception sessions per kiosk asset (``unassigned`` without one)."""
        return await self._grouped(principal, "perception_sessions", _SHOWROOM, "count(*)")

    async def showroom_qd(self, principal: Principal) -> Groups:
        """The average final QD of each kiosk asset's sessions."""
        return await self._grouped(principal, "perception_sessions", _SHOWROOM,
                                   "avg(t.qd_final)", "t.qd_final IS NOT NULL")

    async def visitor_qd(self, principal: Principal) -> Groups:
        """Each scored person's average QD, the highest first."""
        return await self._grouped(principal, "qd_scores", "t.person_id", "avg(t.score)",
                                   _SCORED_VISITOR)

    async def visitor_scores(self, principal: Principal) -> Groups:
        """How many scores each scored person has."""
        return await self._grouped(principal, "qd_scores", "t.person_id", "count(*)",
                                   _SCORED_VISITOR)

    async def qd_histogram(self, principal: Principal) -> list[int]:
        """How many QD scores fall in each bucket of `QD_EDGES` (the last one includes 100)."""
        groups = dict(await self._grouped(principal, "qd_scores",
                                          "LEAST(floor(t.score / 10.0)::int, 9)", "count(*)",
                                          "t.score IS NOT NULL"))
        return [int(groups.get(str(i), 0)) for i in range(len(QD_EDGES) - 1)]

    async def recent_activity(self, principal: Principal, limit: int = 12
                              ) -> list[dict[str, Any]]:
        """The newest interactions and stage moves in scope, newest first, with the client's
        name (the newest rows are picked first and only they are joined to names)."""
        out: list[dict[str, Any]] = []
        people, leads = collection("people").table, collection("leads").table
        scope, sp = row_scope_sql(principal, "interactions", "t", 3)
        for r in await self._db.pool.fetch(
                f"SELECT n.*, p.full_name FROM (SELECT t.tenant_id, t.occurred_at AS at, t.kind, "
                f"t.summary, t.person_id FROM {collection('interactions').table} t WHERE "
                f"t.tenant_id = $1 AND NOT t.deleted AND {scope} ORDER BY t.occurred_at DESC "
                f"LIMIT $2) n LEFT JOIN {people} p ON p.tenant_id = n.tenant_id AND p.id = "
                f"n.person_id", principal.tenant_id, limit, *sp):
            out.append({"at": r["at"], "kind": r["kind"], "summary": r["summary"] or "",
                        "person_id": r["person_id"], "name": r["full_name"] or r["person_id"]})
        scope, sp = row_scope_sql(principal, "stage_history", "t", 3)
        for r in await self._db.pool.fetch(
                f"SELECT n.*, l.person_id, p.full_name FROM (SELECT t.tenant_id, t.lead_id, "
                f"t.changed_at AS at, t.from_stage, t.to_stage FROM "
                f"{collection('stage_history').table} t WHERE t.tenant_id = $1 AND NOT "
                f"t.deleted AND {scope} ORDER BY t.changed_at DESC LIMIT $2) n LEFT JOIN {leads} "
                f"l ON l.tenant_id = n.tenant_id AND l.id = n.lead_id LEFT JOIN {people} p ON "
                f"p.tenant_id = n.tenant_id AND p.id = l.person_id", principal.tenant_id, limit,
                *sp):
            out.append({"at": r["at"], "kind": "stage",
                        "summary": f"{r['from_stage'] or '—'} → {r['to_stage']}",
                        "person_id": r["person_id"], "name": r["full_name"] or "lead"})
        out.sort(key=lambda e: e["at"], reverse=True)
        return out[:limit]
