"""Oracle canvases: the pages' projection rows, and the hub's own tables of revisions, forks
and merge requests (``oracle_*``), plus the Yjs client ids bound to devices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from hub.database import Database

Row = dict[str, Any]
Records = list[asyncpg.Record]


class CanvasStore:
    """Canvas rows of one tenant at a time (who may see them is `hub.policy`'s, by the
    caller)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, tenant_id: str, page_id: str) -> Row | None:
        """A live page's projection row."""
        row = await self._db.pool.fetchrow(
            "SELECT * FROM oracle_canvas_pages WHERE tenant_id = $1 AND id = $2 AND NOT deleted",
            tenant_id, page_id)
        return dict(row) if row else None

    async def pages(self, tenant_id: str) -> list[Row]:
        """Every live page, newest first, its components summarised by count."""
        rows = await self._db.pool.fetch(
            "SELECT tenant_id, id, owner_id, team_id, created_at, title, sharing, editors, "
            "viewers, jsonb_array_length(components) AS component_count "
            "FROM oracle_canvas_pages WHERE tenant_id = $1 AND NOT deleted "
            "ORDER BY created_at DESC NULLS LAST, id", tenant_id)
        return [dict(r) for r in rows]

    async def add_revision(self, tenant_id: str, revision_id: str, page_id: str, name: str,
                           content: Row, state: bytes, created_by: str) -> Row:
        row = await self._db.pool.fetchrow(
            "INSERT INTO oracle_canvas_revisions (tenant_id, revision_id, page_id, name, "
            "content, state, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING "
            "revision_id, page_id, name, created_by, created_at",
            tenant_id, revision_id, page_id, name, content, state, created_by)
        return dict(row)

    async def revisions(self, tenant_id: str, page_id: str) -> list[Row]:
        """A page's revisions, oldest first (without their content)."""
        rows = await self._db.pool.fetch(
            "SELECT revision_id, page_id, name, created_by, created_at FROM "
            "oracle_canvas_revisions WHERE tenant_id = $1 AND page_id = $2 ORDER BY created_at,"
            " revision_id", tenant_id, page_id)
        return [dict(r) for r in rows]

    async def revision(self, tenant_id: str, page_id: str, revision_id: str) -> Row | None:
        """One revision with its content."""
        row = await self._db.pool.fetchrow(
            "SELECT revision_id, page_id, name, created_by, created_at, content FROM "
            "oracle_canvas_revisions WHERE tenant_id = $1 AND page_id = $2 AND revision_id = $3",
            tenant_id, page_id, revision_id)
        return dict(row) if row else None

    async def bind_client_ids(self, tenant_id: str, device_id: str, client_ids: Sequence[int]
                              ) -> set[int]:
        """Bind the client ids not bound yet to ``device_id``; the ids bound to it."""
        async with self._db.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO hub_client_ids (tenant_id, client_id, device_id) VALUES ($1, $2, "
                "$3) ON CONFLICT DO NOTHING", [(tenant_id, c, device_id) for c in client_ids])
            rows = await conn.fetch(
                "SELECT client_id FROM hub_client_ids WHERE tenant_id = $1 AND device_id = $2 "
                "AND client_id = ANY($3::bigint[])", tenant_id, device_id, list(client_ids))
        return {r["client_id"] for r in rows}

    async def add_fork(self, tenant_id: str, fork_id: str, parent_id: str, fork_point: Row,
                       created_by: str) -> None:
        await self._db.pool.execute(
            "INSERT INTO oracle_canvas_forks (tenant_id, fork_id, parent_id, fork_point, "
            "created_by) VALUES ($1, $2, $3, $4, $5)",
            tenant_id, fork_id, parent_id, fork_point, created_by)

    async def forks(self, tenant_id: str, page_id: str) -> Records:
        """A page's live forks, oldest first, with the fork page's sharing columns."""
        rows: Records = await self._db.pool.fetch(
            "SELECT f.fork_id, f.parent_id, f.created_by, f.created_at, p.title, p.owner_id, "
            "p.team_id, p.sharing, p.editors, p.viewers, p.tenant_id FROM oracle_canvas_forks f "
            "JOIN oracle_canvas_pages p ON p.tenant_id = f.tenant_id AND p.id = f.fork_id "
            "WHERE f.tenant_id = $1 AND f.parent_id = $2 AND NOT p.deleted ORDER BY "
            "f.created_at", tenant_id, page_id)
        return rows

    async def fork_parent(self, tenant_id: str, fork_id: str) -> str | None:
        """The page ``fork_id`` was forked from (None: not a fork)."""
        parent: str | None = await self._db.pool.fetchval(
            "SELECT parent_id FROM oracle_canvas_forks WHERE tenant_id = $1 AND fork_id = $2",
            tenant_id, fork_id)
        return parent

    async def fork_point(self, tenant_id: str, fork_id: str) -> Any:
        """The content a fork was made from (or last merged at); None: no such fork."""
        return await self._db.pool.fetchval(
            "SELECT fork_point FROM oracle_canvas_forks WHERE tenant_id = $1 AND fork_id = $2",
            tenant_id, fork_id)

    async def move_fork_point(self, tenant_id: str, fork_id: str, fork_point: Row) -> None:
        await self._db.pool.execute(
            "UPDATE oracle_canvas_forks SET fork_point = $3 WHERE tenant_id = $1 AND "
            "fork_id = $2", tenant_id, fork_id, fork_point)

    async def add_merge_request(self, tenant_id: str, mr_id: str, fork_id: str, parent_id: str,
                                title: str, created_by: str) -> None:
        await self._db.pool.execute(
            "INSERT INTO oracle_merge_requests (tenant_id, mr_id, fork_id, parent_id, title, "
            "created_by) VALUES ($1, $2, $3, $4, $5, $6)",
            tenant_id, mr_id, fork_id, parent_id, title, created_by)

    async def merge_requests(self, tenant_id: str, page_id: str | None, status: str | None
                             ) -> Records:
        """Merge requests (of one parent page, of one status) with the parent's sharing
        columns, oldest first."""
        rows: Records = await self._db.pool.fetch(
            "SELECT m.*, p.owner_id, p.team_id, p.sharing, p.editors, p.viewers "
            "FROM oracle_merge_requests m JOIN oracle_canvas_pages p "
            "ON p.tenant_id = m.tenant_id AND p.id = m.parent_id WHERE m.tenant_id = $1 "
            "AND ($2::text IS NULL OR m.parent_id = $2) AND ($3::text IS NULL OR m.status = $3)"
            " ORDER BY m.created_at", tenant_id, page_id, status)
        return rows

    async def merge_request(self, tenant_id: str, mr_id: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._db.pool.fetchrow(
            "SELECT * FROM oracle_merge_requests WHERE tenant_id = $1 AND mr_id = $2",
            tenant_id, mr_id)
        return row

    async def reviewed(self, tenant_id: str, mr_id: str, status: str, reviewed_by: str,
                       comment: str, merged_seq: int | None) -> None:
        """Record a merge request's review."""
        await self._db.pool.execute(
            "UPDATE oracle_merge_requests SET status = $3, reviewed_by = $4, reviewed_at = "
            "now(), review_comment = $5, merged_seq = $6 WHERE tenant_id = $1 AND mr_id = $2",
            tenant_id, mr_id, status, reviewed_by, comment, merged_seq)
