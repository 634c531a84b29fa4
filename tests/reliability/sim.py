"""A deterministic simulation of a hub, several edges and the network between them.

One process, one seeded scheduler: each step picks one action (a local write, a push, a message
delivered, a link cut, a reconnect) from the seed, so a seed is a complete fault plan and a
failing seed replays exactly (``python -m tests.reliability.sim --seed N`` prints its trace).

The edges are the real thing minus the socket: the real `Replica` (SQLite in memory) and the
real `SyncClient` message handling and push window. The hub is a model of its sync rules: an
update id's verdict is final, a committed update is acknowledged with its sequence, an update
whose clocks do not continue the hub's document is refused as a gap, an update making a person's
city "Nowhere" is refused (a permission refusal), and the fault plan makes it refuse some updates
for its own trouble (a sandbox timeout, to be retried). Half of the pull batches carry each
document's updates as one merged update, as the hub's live sessions send them. Every write
appends a unique token to the person's notes, so "present exactly once" is checkable in the
merged text.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from core.auth import DeviceKey
from edge_agent.crypto import Sealer
from edge_agent.device import Pairing
from edge_agent.push_window import PushWindow
from edge_agent.replica import Replica
from edge_agent.sync_client import SyncClient
from hub.pull_merge import UpdateMerger
from hub.store import LogItem
from schema import collection
from sync import protocol as p
from sync.record import RecordDoc

PEOPLE = collection("people")
FORBIDDEN_CITY = "Nowhere"
TOKEN = re.compile(r"\[(e\d+w\d+)\]")


@dataclass
class FaultPlan:
    """How often each fault happens, per scheduler step."""

    cut: float = 0.04
    retryable: float = 0.15
    forbidden_write: float = 0.08


@dataclass
class SimHub:
    docs: dict[str, RecordDoc] = field(default_factory=dict)
    log: list[p.PullItem] = field(default_factory=list)
    verdicts: dict[str, int | tuple[str, str]] = field(default_factory=dict)
    """Final verdict per update id: its sequence, or a refusal (reason, message)."""

    def judge(self, item: p.PushItem, rng: random.Random, plan: FaultPlan
              ) -> int | tuple[str, str]:
        held = self.verdicts.get(item.update_id)
        if held is not None:
            return held
        if rng.random() < plan.retryable:  # the hub's own trouble: not final
            return ("worker_timeout", "sandbox worker gave no reply")
        verdict = self._judge(item)
        self.verdicts[item.update_id] = verdict
        return verdict

    def _judge(self, item: p.PushItem) -> int | tuple[str, str]:
        _, record_id = item.guid.split("/")
        doc = self.docs.get(item.guid) or RecordDoc(PEOPLE, record_id)
        trial = RecordDoc(PEOPLE, record_id, state=doc.encode_state())
        before = trial.state_vector()
        trial.apply(item.data)
        if trial.has_pending():
            return ("gap", "update depends on changes the hub does not hold")
        if trial.state_vector() == before:
            return 0
        if trial.content().get("city") == FORBIDDEN_CITY:
            return ("not_owner", "this person belongs to another broker")
        self.docs[item.guid] = trial
        seq = len(self.log) + 1
        self.log.append(p.PullItem(seq, item.guid, p.ItemKind.UPDATE, item.data))
        return seq


@dataclass
class SimEdge:
    number: int
    replica: Replica
    client: SyncClient
    online: bool = False
    window: PushWindow | None = None
    to_hub: deque[p.PushBatch] = field(default_factory=deque)
    to_edge: deque[p.Message] = field(default_factory=deque)
    sent_log: int = 0
    """How much of the hub's log this session has been sent."""
    records: list[str] = field(default_factory=list)
    writes: int = 0


@dataclass
class Outcome:
    seed: int
    trace: list[str]
    good: dict[str, str] = field(default_factory=dict)
    """Token → record of every write expected on the hub."""
    forbidden: dict[str, str] = field(default_factory=dict)
    """Token → record of every write the hub must refuse."""


class Simulation:
    def __init__(self, seed: int, folder: Path, *, edges: int = 3, steps: int = 160,
                 plan: FaultPlan | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.folder = folder
        self.edge_count = edges
        self.steps = steps
        self.plan = plan or FaultPlan()
        self.hub = SimHub()
        self.merger = UpdateMerger(1 << 20)
        self.edges: list[SimEdge] = []
        self.outcome = Outcome(seed, [])
        self.step = 0

    def clock(self) -> float:
        """Logical time: one tick per scheduler step (wall time would make runs differ)."""
        return float(self.step)

    def note(self, line: str) -> None:
        self.outcome.trace.append(line)

    async def run(self) -> Outcome:
        for n in range(self.edge_count):
            replica = Replica(Path(":memory:"), Sealer(bytes([n + 1]) * 32), client_id=1000 + n)
            await replica.__aenter__()
            pairing = Pairing("http://hub.invalid", f"d{n}", "t1", f"u{n}", "ipad", 1000 + n)
            client = SyncClient(replica, pairing, DeviceKey.generate(), batch=3,
                                clock=self.clock)
            self.edges.append(SimEdge(n, replica, client))
        try:
            for step in range(self.steps):
                await self._step(step, faults=True)
            self.note("-- heal: no more faults, every link up, run until quiet --")
            self.plan = FaultPlan(cut=0, retryable=0, forbidden_write=0)
            for edge in self.edges:
                if not edge.online:
                    await self._connect(edge)
            for _ in range(20_000):
                if not await self._heal_step():
                    break
            else:
                raise AssertionError(f"seed {self.seed}: did not quiesce")
            await self._check()
        finally:
            for edge in self.edges:
                await edge.replica.__aexit__(None, None, None)
        return self.outcome

    async def _step(self, step: int, *, faults: bool) -> None:
        """One scheduler step: an action picked by the seed among those possible."""
        actions: list[tuple[str, SimEdge]] = []
        for edge in self.edges:
            actions.append(("write", edge))
            if edge.online:
                if self.rng.random() < self.plan.cut:
                    actions.append(("cut", edge))
                if edge.to_hub:
                    actions.append(("deliver_up", edge))
                if edge.to_edge:
                    actions.append(("deliver_down", edge))
                actions.append(("push", edge))
            else:
                actions.append(("connect", edge))
        kind, edge = self.rng.choice(actions)
        await self._act(kind, edge)

    async def _heal_step(self) -> bool:
        """Deliver what is queued, else push what is left; False when all is quiet."""
        queued = [("deliver_up", e) for e in self.edges if e.to_hub] + [
            ("deliver_down", e) for e in self.edges if e.to_edge]
        if queued:
            await self._act(*self.rng.choice(queued))
            return True
        return await self._push_any()

    async def _act(self, kind: str, edge: SimEdge) -> None:
        self.step += 1
        actions = {"write": self._write, "cut": self._cut, "connect": self._connect,
                   "deliver_up": self._deliver_up, "deliver_down": self._deliver_down,
                   "push": self._push}
        await actions[kind](edge)

    async def _push_any(self) -> bool:
        for edge in self.edges:
            if edge.online and await self._push(edge):
                return True
        return False

    # --- actions ------------------------------------------------------------------------------

    async def _write(self, edge: SimEdge) -> None:
        edge.writes += 1
        token = f"e{edge.number}w{edge.writes}"
        held = [d.record_id for d in edge.replica.documents() if d.collection is PEOPLE]
        if not held or self.rng.random() < 0.3:
            record_id = f"p{edge.number}-{edge.writes}"
            values = {"tenant_id": "t1", "owner_id": f"u{edge.number}",
                      "full_name": f"Visitor {token}", "notes": f"[{token}]"}
            forbidden = False
        else:
            record_id = self.rng.choice(sorted(held))
            record = edge.replica.record("people", record_id)
            values = {"notes": f"{record.notes or ''}[{token}]"}
            forbidden = (self.rng.random() < self.plan.forbidden_write
                         and record.city != FORBIDDEN_CITY)
            if forbidden:
                values["city"] = FORBIDDEN_CITY
        await edge.replica.write("people", record_id, values)
        (self.outcome.forbidden if forbidden else self.outcome.good)[token] = record_id
        self.note(f"edge {edge.number} writes {token} on {record_id}"
                  + (" (forbidden)" if forbidden else ""))

    async def _connect(self, edge: SimEdge) -> None:
        edge.online = True
        edge.window = PushWindow(max_batches=3)
        cursor = await edge.replica.cursor()
        edge.to_edge.append(p.PullBatch(self._pulled(cursor), len(self.hub.log), more=False))
        edge.sent_log = len(self.hub.log)
        self.note(f"edge {edge.number} connects at cursor {cursor}")

    async def _cut(self, edge: SimEdge) -> None:
        edge.online = False
        edge.window = None
        lost = len(edge.to_hub) + len(edge.to_edge)
        edge.to_hub.clear()
        edge.to_edge.clear()
        self.note(f"edge {edge.number} link cut ({lost} messages lost)")

    async def _push(self, edge: SimEdge) -> bool:
        if edge.window is None:
            return False
        batch = await edge.client.next_batch(edge.window)
        if batch is None:
            return False
        if batch.items:
            edge.to_hub.append(batch)
            self.note(f"edge {edge.number} pushes " + ", ".join(i.guid for i in batch.items))
        return True

    async def _deliver_up(self, edge: SimEdge) -> None:
        batch = edge.to_hub.popleft()
        acks: list[tuple[str, int]] = []
        for item in batch.items:
            verdict = self.hub.judge(item, self.rng, self.plan)
            if isinstance(verdict, int):
                acks.append((item.update_id, verdict))
            else:
                edge.to_edge.append(p.Refusal(item.update_id, item.guid, *verdict))
                self.note(f"hub refuses {item.guid} from edge {edge.number}: {verdict[0]}")
        if acks:
            edge.to_edge.append(p.Ack(tuple(acks)))
        for other in self.edges:  # fan-out of new commits to every session
            if other.online and other.sent_log < len(self.hub.log):
                other.to_edge.append(p.PullBatch(self._pulled(other.sent_log),
                                                 len(self.hub.log), more=False))
                other.sent_log = len(self.hub.log)
        self.note(f"hub takes a batch of {len(batch.items)} from edge {edge.number}")

    def _pulled(self, cursor: int) -> tuple[p.PullItem, ...]:
        """The log after ``cursor`` as pull items: one per update, or (half the time) one
        merged update per document, as the hub's live sessions send them."""
        items = self.hub.log[cursor:]
        if self.rng.random() < 0.5:
            return tuple(items)
        merged = self.merger.merge([LogItem(i.seq, i.guid, i.data, False) for i in items])
        return tuple(p.PullItem(o.item.seq, o.item.guid, p.ItemKind.UPDATE, o.item.data)
                     for o in merged)

    async def _deliver_down(self, edge: SimEdge) -> None:
        assert edge.window is not None
        message = edge.to_edge.popleft()
        await edge.client.handle(message, edge.window, asyncio.Event())
        what = (f"REFUSAL {message.reason} of {message.guid}"
                if isinstance(message, p.Refusal) else type(message).__name__)
        self.note(f"edge {edge.number} handles {what}")

    # --- checks -------------------------------------------------------------------------------

    async def _check(self) -> None:
        hub_notes = {guid: doc.content().get("notes") or "" for guid, doc in self.hub.docs.items()}
        for edge in self.edges:
            assert await edge.replica.pending_count() == 0, (
                f"seed {self.seed}: edge {edge.number} still has pending updates")
            held = {d.guid: d.content() for d in edge.replica.documents()}
            hub = {guid: doc.content() for guid, doc in self.hub.docs.items()}
            assert held == hub, f"seed {self.seed}: edge {edge.number} differs from the hub"
        seen: dict[str, int] = {}
        for notes in hub_notes.values():
            for token in TOKEN.findall(notes):
                seen[token] = seen.get(token, 0) + 1
        for token, record_id in self.outcome.good.items():
            assert seen.get(token) == 1, (
                f"seed {self.seed}: write {token} on {record_id} is on the hub "
                f"{seen.get(token, 0)} times")
        refused = set()
        for edge in self.edges:
            for refusal in await edge.replica.refusals():
                refused.update(TOKEN.findall(str(refusal["fields"].get("notes", ""))))
        for token in self.outcome.forbidden:
            assert token not in seen, f"seed {self.seed}: forbidden write {token} on the hub"
            assert token in refused, f"seed {self.seed}: refusal of {token} not shown"


async def simulate(seed: int, **options: object) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="velocity-sim-") as folder:
        return await Simulation(seed, Path(folder), **options).run()  # type: ignore[arg-type]


@dataclass
class SeedsRun:
    """What a run of many seeds saw: writes and refusals checked, and every failing seed."""

    seeds: int = 0
    writes: int = 0
    refused: int = 0
    failures: dict[int, str] = field(default_factory=dict)


def run_seeds(seeds: range) -> SeedsRun:
    """Run ``seeds`` one after another in this process (its own event loop); a failing seed is
    recorded with its message and the run goes on."""
    async def run() -> SeedsRun:
        out = SeedsRun()
        for seed in seeds:
            out.seeds += 1
            try:
                outcome = await simulate(seed)
            except AssertionError as exc:
                out.failures[seed] = str(exc)
                continue
            out.writes += len(outcome.good)
            out.refused += len(outcome.forbidden)
        return out
    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay one seed of the simulation.")
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    outcome = asyncio.run(simulate(args.seed))
    print("\n".join(outcome.trace))
    print(f"seed {args.seed}: {len(outcome.good)} writes on the hub, "
          f"{len(outcome.forbidden)} refused, all checks passed")


if __name__ == "__main__":
    main()
