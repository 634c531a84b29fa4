"""Alerts are worked out when asked, from records the caller can already read: nothing to
store, nothing to sync, the same answer on the hub and on a device offline."""

from __future__ import annotations

from datetime import datetime, timedelta

from mobile_edge.store import MobileStore, Row

SOON = timedelta(hours=24)


async def active_alerts(store: MobileStore, now: datetime) -> list[Row]:
    """The caller's appointments in the next 24 hours, open high-priority insights on leads in
    their scope, and their overdue open tasks; most urgent first."""
    alerts: list[Row] = []
    for event in await store.select("calendar_events", [
            ("owner_id", "=", store.user_id), ("status", "=", "scheduled"),
            ("starts_at", ">=", now), ("starts_at", "<", now + SOON)], "starts_at", limit=50):
        alerts.append({"kind": "upcoming_appointment", "severity": "info",
                       "at": event["starts_at"], "title": event["title"],
                       "record": f"calendar_events/{event['id']}", "lead_id": event["lead_id"]})
    for insight in await store.select("insights", [("status", "=", "open"), ("priority", "=", 1)],
                                      "-created_at", limit=50):
        alerts.append({"kind": "insight", "severity": "high", "at": insight["created_at"],
                       "title": insight["title"], "record": f"insights/{insight['id']}",
                       "lead_id": insight["lead_id"]})
    for task in await store.select("tasks", [("assignee_id", "=", store.user_id),
                                             ("status", "=", "OPEN"), ("due_at", "<", now)],
                                    "due_at", limit=50):
        alerts.append({"kind": "overdue_task", "severity": "warning", "at": task["due_at"],
                       "title": task["title"], "record": f"tasks/{task['id']}",
                       "lead_id": task["lead_id"]})
    rank = {"high": 0, "warning": 1, "info": 2}
    return sorted(alerts, key=lambda a: (rank[a["severity"]], a["at"] or ""))
