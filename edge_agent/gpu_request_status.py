"""The device's GPU requests at a glance, for its ``/status``."""

from __future__ import annotations

from typing import Any

from edge_agent.replica import Replica

OPEN = ("requested", "queued", "running")


async def gpu_request_summary(replica: Replica) -> dict[str, Any]:
    """Requests by status, and the unfinished ones with their progress."""
    counts = await replica.query(
        "SELECT status, count(*) AS n FROM temp.intel_gpu_requests WHERE NOT deleted "
        "GROUP BY status", ())
    unfinished = await replica.query(
        "SELECT id, kind, status, progress FROM temp.intel_gpu_requests WHERE NOT deleted AND "
        "status IN (?, ?, ?) ORDER BY requested_at", OPEN)
    return {"by_status": {r["status"]: r["n"] for r in counts}, "open": unfinished}
