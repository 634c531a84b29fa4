"""The hub's Prometheus metrics: counters the sync path moves, gauges read when scraped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from hub.service import Hub

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HubMetrics:
    """One registry per hub (tests run several hubs in one process)."""

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.push_batches = Counter("velocity_hub_push_batches", "Push batches judged",
                                    ["tenant"], registry=r)
        self.acked = Counter("velocity_hub_updates_acked", "Updates acknowledged (committed, "
                             "or held already)", ["tenant"], registry=r)
        self.refused = Counter("velocity_hub_updates_refused", "Updates refused, by reason",
                               ["tenant", "reason"], registry=r)
        self.retried = Counter("velocity_hub_updates_retried", "Updates the device was told to "
                               "send again later (the hub's own trouble), by reason",
                               ["tenant", "reason"], registry=r)
        self.ack_seconds = Histogram("velocity_hub_ack_seconds", "From a push batch reaching "
                                     "the session to its answer (after commit)",
                                     ["tenant"], buckets=ACK_BUCKETS, registry=r)
        self.sessions_closed = Counter("velocity_hub_sessions_closed", "Sync sessions ended, "
                                       "by reason", ["reason"], registry=r)
        r.register(_LiveState(hub))

    def pushed(self, tenant: str, started: float, acked: int,
               refused: list[str], retried: list[str]) -> None:
        """One push batch answered: ``refused``/``retried`` hold a reason per update."""
        self.push_batches.labels(tenant).inc()
        self.ack_seconds.labels(tenant).observe(time.monotonic() - started)
        if acked:
            self.acked.labels(tenant).inc(acked)
        for reason in refused:
            self.refused.labels(tenant, reason).inc()
        for reason in retried:
            self.retried.labels(tenant, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveState(Collector):
    """Gauges read from the hub when scraped: live sessions, how far behind they are, the
    sandbox pool."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        hub = self._hub
        sessions = GaugeMetricFamily("velocity_hub_sessions", "Live sync sessions on this hub",
                                     labels=["tenant"])
        lag = GaugeMetricFamily("velocity_hub_feed_lag_updates", "Most committed updates a "
                                "live session of the tenant has yet to pass", labels=["tenant"])
        for tenant, count, behind in hub.connections.by_tenant():
            sessions.add_metric([tenant], count)
            lag.add_metric([tenant], behind)
        yield sessions
        yield lag
        stats = hub.sandbox.stats
        yield GaugeMetricFamily("velocity_hub_sandbox_workers_ready", "Sandbox workers ready",
                                value=stats.workers_ready)
        yield GaugeMetricFamily("velocity_hub_sandbox_busy", "Sandbox jobs running or queued",
                                value=stats.in_flight)
        yield CounterMetricFamily("velocity_hub_sandbox_jobs", "Jobs the sandbox ran",
                                  value=stats.jobs)
        yield CounterMetricFamily("velocity_hub_sandbox_restarts", "Sandbox workers replaced",
                                  value=stats.restarts)
        failures = CounterMetricFamily("velocity_hub_sandbox_failures", "Sandbox jobs that "
                                       "failed, by code", labels=["code"])
        for code, count in sorted(stats.failures.items()):
            failures.add_metric([code], count)
        yield failures
