"""Devices: the list the WebOS shows, each device's backlog, the presence beat, and the
registry (pairing codes, paired devices, their CRDT client ids)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import asyncpg

from core.identity import Principal
from hub.database import Database
from hub.scope import scope_sql
from hub.storage import audit


class DeviceStore:
    """Reads of ``hub_devices`` for the device list, and the presence beat."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def listing(self, tenant_id: str, online_within_s: float) -> list[asyncpg.Record]:
        """Every device of the tenant with its user (``user_name``, ``user_active``,
        ``user_role``, ``user_team``), ``recent`` (seen within ``online_within_s``) and
        ``refused`` (its updates refused for good), oldest pairing first."""
        rows: list[asyncpg.Record] = await self._db.pool.fetch(
            "SELECT d.*, u.full_name AS user_name, u.active AS user_active, u.role AS user_role, "
            "u.team_id AS user_team, d.last_seen > now() - make_interval(secs => $2) AS recent, "
            "(SELECT count(*) FROM hub_refusals r WHERE r.tenant_id = "
            "d.tenant_id AND r.device_id = d.device_id) AS refused "
            "FROM hub_devices d JOIN hub_users u USING (tenant_id, user_id) "
            "WHERE d.tenant_id = $1 ORDER BY d.paired_at, d.device_id", tenant_id,
            online_within_s)
        return rows

    async def pending(self, owner: Principal, cursor: int, cap: int) -> int:
        """Documents the owner's devices may read that changed after ``cursor``, counted up to
        ``cap`` (on the ``hub_documents (tenant_id, updated_seq)`` index)."""
        scope, params = scope_sql(owner, "d", 4)
        count: int = await self._db.pool.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM hub_documents d WHERE d.tenant_id = $1 AND "
            f"d.updated_seq > $2 AND {scope} LIMIT $3) AS p", owner.tenant_id, cursor, cap,
            *params)
        return count

    async def mark_seen(self, device_ids: Sequence[str]) -> None:
        """These devices (live on this hub) were seen now."""
        await self._db.pool.execute(
            "UPDATE hub_devices SET last_seen = now() WHERE device_id = ANY($1::text[])",
            list(device_ids))


class _Taken(Exception):
    """A client id bound to another device (rolls the binding back)."""

    def __init__(self, client_id: int) -> None:
        self.client_id = client_id


class DeviceRegistry:
    """Pairing codes, paired devices and the CRDT client ids bound to them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_pairing_code(self, tenant_id: str, code_hash: str, user_id: str,
                               device_kind: str, created_by: str, expires_at: datetime) -> None:
        await self._db.pool.execute(
            "INSERT INTO hub_pairing_codes (tenant_id, code_hash, user_id, device_kind,"
            " created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            tenant_id, code_hash, user_id, device_kind, created_by, expires_at)

    async def pair(self, code_hash: str, device_id: str, name: str, public_key: bytes,
                   entry: Callable[[asyncpg.Record, asyncpg.Record], audit.Entry]
                   ) -> asyncpg.Record | None:
        """Use up a live pairing code and register the device it pairs, with the audit entry
        ``entry(code, device)``, in one transaction; the device's row, None when the code is
        unknown, used or expired."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            code = await conn.fetchrow(
                "UPDATE hub_pairing_codes SET used_at = now() WHERE code_hash = $1 AND"
                " used_at IS NULL AND expires_at > now() RETURNING *", code_hash)
            if code is None:
                return None
            device: asyncpg.Record = await conn.fetchrow(
                "INSERT INTO hub_devices (tenant_id, device_id, user_id, name, kind, public_key)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *", code["tenant_id"], device_id,
                code["user_id"], name, code["device_kind"], public_key)
            await audit.write(conn, code["tenant_id"], entry(code, device))
        return device

    async def device(self, device_id: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._db.pool.fetchrow(
            "SELECT * FROM hub_devices WHERE device_id = $1", device_id)
        return row

    async def installs(self, tenant_id: str) -> list[asyncpg.Record]:
        """The tenant's devices with their user's name and how far behind the tenant's newest
        sequence their cursor is (``pending``), oldest pairing first."""
        rows: list[asyncpg.Record] = await self._db.pool.fetch(
            "SELECT d.*, u.full_name AS user_name, t.last_seq - d.cursor AS pending "
            "FROM hub_devices d JOIN hub_users u USING (tenant_id, user_id) "
            "JOIN hub_tenants t USING (tenant_id) WHERE d.tenant_id = $1 ORDER BY d.paired_at",
            tenant_id)
        return rows

    async def owner(self, tenant_id: str, device_id: str) -> asyncpg.Record | None:
        """``user_id, role`` of the device's user."""
        row: asyncpg.Record | None = await self._db.pool.fetchrow(
            "SELECT u.user_id, u.role FROM hub_devices d JOIN hub_users u USING (tenant_id, "
            "user_id) WHERE d.tenant_id = $1 AND d.device_id = $2", tenant_id, device_id)
        return row

    async def revoke(self, tenant_id: str, device_id: str) -> None:
        await self._db.pool.execute(
            "UPDATE hub_devices SET status = 'revoked', revoked_at = now() "
            "WHERE tenant_id = $1 AND device_id = $2", tenant_id, device_id)

    async def seen(self, tenant_id: str, device_id: str, cursor: int) -> None:
        """The device reported now, at ``cursor`` (a cursor never moves back)."""
        await self._db.pool.execute(
            "UPDATE hub_devices SET last_seen = now(), cursor = GREATEST(cursor, $3) "
            "WHERE tenant_id = $1 AND device_id = $2", tenant_id, device_id, cursor)

    async def seen_many(self, cursors: Mapping[tuple[str, str], int]) -> None:
        """Devices (by tenant and device id) reported now, each at its cursor (one statement)."""
        await self._db.pool.execute(
            "UPDATE hub_devices d SET last_seen = now(), cursor = GREATEST(d.cursor, "
            "v.cursor) FROM unnest($1::text[], $2::text[], $3::bigint[]) "
            "AS v(tenant_id, device_id, cursor) "
            "WHERE d.tenant_id = v.tenant_id AND d.device_id = v.device_id",
            [t for t, _ in cursors], [d for _, d in cursors], list(cursors.values()))

    async def offence(self, tenant_id: str, device_id: str, count: int, max_offences: int,
                      blocked_reason: str) -> str | None:
        """Count ``count`` offences (a push too); the device is blocked with
        ``blocked_reason`` once it has ``max_offences``. Its status after, None: no device."""
        status: str | None = await self._db.pool.fetchval(
            "UPDATE hub_devices SET offences = offences + $5, last_push_at = now(), "
            "blocked_reason = CASE WHEN "
            "offences + $5 >= $3 THEN $4 ELSE blocked_reason END, status = CASE WHEN offences + $5"
            " >= $3 THEN 'blocked' ELSE status END WHERE tenant_id = $1 AND device_id = $2 "
            "RETURNING status", tenant_id, device_id, max_offences, blocked_reason, count)
        return status

    async def take_push_slot(self, tenant_id: str, device_id: str, interval_s: float) -> bool:
        """Record a push now unless the last one was less than ``interval_s`` ago."""
        row = await self._db.pool.fetchrow(
            "UPDATE hub_devices SET last_push_at = now() WHERE tenant_id = $1 AND device_id = $2"
            " AND (last_push_at IS NULL OR last_push_at <= now() - make_interval(secs => $3))"
            " RETURNING 1", tenant_id, device_id, interval_s)
        return row is not None

    async def bind_client_ids(self, tenant_id: str, device_id: str, client_ids: Sequence[int]
                              ) -> int | None:
        """Bind each client id to the device at first use, all or none: the first id bound
        to another device (nothing is bound then), or None."""
        async with self._db.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    for cid in client_ids:
                        owner = await conn.fetchval(
                            "INSERT INTO hub_client_ids (tenant_id, client_id, device_id) VALUES"
                            " ($1, $2, $3) ON CONFLICT (tenant_id, client_id) DO UPDATE SET "
                            "client_id = EXCLUDED.client_id RETURNING device_id",
                            tenant_id, cid, device_id)
                        if owner != device_id:
                            raise _Taken(cid)
            except _Taken as taken:
                return taken.client_id
        return None

    async def bound_client_ids(self, tenant_id: str, device_id: str) -> set[int]:
        rows = await self._db.pool.fetch(
            "SELECT client_id FROM hub_client_ids WHERE tenant_id = $1 AND device_id = $2",
            tenant_id, device_id)
        return {r["client_id"] for r in rows}
