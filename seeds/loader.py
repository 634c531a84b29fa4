"""Load a generated dataset into a hub through the same path as any write (CRDT updates)."""

from __future__ import annotations

from collections.abc import Callable

from core.identity import Principal, Role
from hub.policy import comms_agent
from hub.service import Hub
from hub.store import create_many
from seeds.generator import Dataset

DEMO_PASSWORD = "velocity-demo"


async def load(hub: Hub, data: Dataset, *, chunk: int = 500,
               progress: Callable[[int], None] | None = None) -> int:
    """Create the tenant, its users and every record not already present; returns new records.

    Idempotent: records are keyed by deterministic ids, and existing ones are skipped.
    """
    await hub.accounts.ensure_tenant(data.tenant_id, data.tenant_id.title())
    for user in data.users:
        await hub.accounts.create_user(data.tenant_id, user.email, DEMO_PASSWORD, user.role,
                                       user.full_name, team_id=user.team_id,
                                       user_id=user.user_id)
    existing = await hub.storage.documents.guids(data.tenant_id)
    todo = [r for r in data.records if f"{r[0]}/{r[1]}" not in existing]
    if progress is not None:
        progress(len(data.records) - len(todo))
    loader = Principal(data.tenant_id, f"{data.tenant_id}-admin", Role.ADMIN)
    for start in range(0, len(todo), chunk):
        batch = todo[start : start + chunk]
        await create_many(hub.writer, loader, [r for r in batch if r[0] != "comms_messages"])
        if messages := [r for r in batch if r[0] == "comms_messages"]:  # the provider's word
            await create_many(hub.writer, comms_agent(data.tenant_id), messages)
        if progress is not None:
            progress(len(batch))
    return len(todo)
