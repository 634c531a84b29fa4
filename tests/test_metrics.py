"""`/metrics` on the hub and on a device move by what a small sync run did."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.local_api import create_local_app
from edge_agent.metrics import EdgeMetrics
from edge_agent.service import EdgeAgent
from hub.server import HubServer
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc
from tests.hubkit import pair_device, running_hub
from tests.test_edge_e2e import _paired

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(server: HubServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200, r.text
    return samples(r.text)


async def test_hub_counts_pushes_acks_refusals_and_sessions() -> None:
    async with running_hub() as server:
        device = await pair_device(server, "junior_broker@t1.test", "t1-junior_broker", 901)
        await device.connect()
        before = await scrape(server)
        assert before[("velocity_hub_sessions", (("tenant", "t1"),))] == 1
        people = collection("people")
        items = []
        for n in range(3):
            doc = RecordDoc(people, f"metrics-{n}", client_id=901)
            items.append(p.PushItem(f"u{n}", doc.guid, doc.write(
                {"tenant_id": "t1", "full_name": f"Client {n}"})))
        other = RecordDoc(people, "metrics-other", client_id=901)  # another tenant's record
        items.append(p.PushItem("u-bad", other.guid, other.write(
            {"tenant_id": "t2", "full_name": "Not yours"})))
        await device.push(items)
        await device.wait_for(lambda: len(device.acks) == 3 and device.refusals)
        reason = device.refusals["u-bad"].reason
        after = await scrape(server)

        def moved(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0) - before.get(key, 0)

        assert moved("velocity_hub_push_batches_total", tenant="t1") == 1
        assert moved("velocity_hub_updates_acked_total", tenant="t1") == 3
        assert moved("velocity_hub_updates_refused_total", tenant="t1", reason=reason) == 1
        assert moved("velocity_hub_ack_seconds_count", tenant="t1") == 1
        assert after[("velocity_hub_sandbox_jobs_total", ())] >= 3
        assert after[("velocity_hub_feed_lag_updates", (("tenant", "t1"),))] >= 0
        await device.close()
        deadline = time.monotonic() + 10
        while (await scrape(server)).get(("velocity_hub_sessions", (("tenant", "t1"),))):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_metrics_refused_from_elsewhere_without_the_token() -> None:
    async with running_hub(metrics_token="s3cret") as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/metrics")).status_code == 401
            ok = await http.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "velocity_hub_sessions" in ok.text


async def test_edge_counts_its_outbox_and_acks(tmp_path: Path) -> None:
    async with running_hub() as server:
        settings = await _paired(server, tmp_path / "ipad", "t1-senior_broker")
        async with EdgeAgent(settings) as agent:
            app = create_local_app(agent)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
                for n in range(2):
                    await agent.write("people", None, {"full_name": f"Walk-in {n}"})
                deadline = time.monotonic() + 20
                while await agent.replica.pending_count():
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                seen = samples((await http.get("/metrics")).text)
        assert seen[("velocity_edge_updates_acked_total", ())] == 2
        assert seen[("velocity_edge_updates_pushed_total", ())] >= 2
        assert seen[("velocity_edge_outbox_pending", ())] == 0
        assert seen[("velocity_edge_online", ())] == 1
        assert seen[("velocity_edge_sessions_total", ())] >= 1


async def test_dashboard_queries_name_exported_metrics(tmp_path: Path) -> None:
    dashboard = json.loads((Path(__file__).parents[1] / "docs" / "grafana-dashboard.json")
                           .read_text())
    async with running_hub() as server:
        hub_names = {f.name for f in text_string_to_metric_families(
            server.hub.metrics.render().decode())}
    edge_names = {f.name for f in text_string_to_metric_families(
        EdgeMetrics().render(pending=0, cursor=0, online=False).decode())}
    exported = set()
    for name in hub_names | edge_names:  # counters are exported with _total, histograms _bucket
        exported |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(re.findall(r"velocity_[a-z_]+", target["expr"]))
            assert used and used <= exported, (panel["title"], used - exported)
