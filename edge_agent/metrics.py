"""The device's Prometheus metrics, served on its loopback API at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class EdgeMetrics:
    """Counters the sync client moves; gauges set from the replica when scraped."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.pushed = Counter("velocity_edge_updates_pushed", "Updates sent to the hub "
                              "(again after a retry, too)", registry=r)
        self.acked = Counter("velocity_edge_updates_acked", "Updates the hub acknowledged",
                             registry=r)
        self.refused = Counter("velocity_edge_updates_refused", "Updates the hub refused, by "
                               "reason", ["reason"], registry=r)
        self.retried = Counter("velocity_edge_updates_retried", "Updates to send again later "
                               "(the hub's own trouble), by reason", ["reason"], registry=r)
        self.pulled = Counter("velocity_edge_items_pulled", "Pull items applied", registry=r)
        self.sessions = Counter("velocity_edge_sessions", "Sync sessions the hub welcomed",
                                registry=r)
        self.disconnects = Counter("velocity_edge_disconnects", "Sync sessions that ended or "
                                   "failed to open, by what happened", ["reason"], registry=r)
        self.online = Gauge("velocity_edge_online", "1 while a sync session is open",
                            registry=r)
        self.pending = Gauge("velocity_edge_outbox_pending", "Local changes not yet "
                             "acknowledged by the hub", registry=r)
        self.cursor = Gauge("velocity_edge_pull_cursor", "The hub sequence this replica "
                            "has applied up to", registry=r)

    def render(self, *, pending: int, cursor: int, online: bool) -> bytes:
        self.pending.set(pending)
        self.cursor.set(cursor)
        self.online.set(1 if online else 0)
        return generate_latest(self.registry)
