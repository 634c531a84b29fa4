"""Convergence: replicas that received the same updates, in any order, with duplicates, drops,
partitions and compaction interleaved, hold identical documents and identical projections."""

from __future__ import annotations

from dataclasses import dataclass, field

import pycrdt as Y
from hypothesis import given
from hypothesis import strategies as st

from schema import collection
from sync.record import RecordDoc

PEOPLE = collection("people")
RECORD_IDS = ("p-1", "p-2")
NAMES = st.sampled_from(["Aarav Mehta", "Zara Khan", "Ishaan Rao", "Meera Iyer", "Dev Shah"])
CITIES = st.sampled_from(["Mumbai", "Dubai", "London", "Pune", None])
WORDS = st.text(alphabet="abcdé😀 ", min_size=0, max_size=6)


@dataclass
class Replica:
    client_id: int
    docs: dict[str, RecordDoc] = field(default_factory=dict)
    seen: list[bytes] = field(default_factory=list)

    def doc(self, rid: str) -> RecordDoc:
        if rid not in self.docs:
            self.docs[rid] = RecordDoc(PEOPLE, rid, client_id=self.client_id)
        return self.docs[rid]

    def receive(self, rid: str, update: bytes) -> None:
        self.doc(rid).apply(update)

    def compact(self, rid: str) -> None:
        """Replace the document by one loaded from its own snapshot (what a store does)."""
        doc = self.doc(rid)
        if doc.has_pending():
            return
        self.docs[rid] = RecordDoc(PEOPLE, rid, client_id=self.client_id, state=doc.compact())


def _local_change(data: st.DataObject, doc: RecordDoc) -> bytes:
    """A random local change; the writer reads its own write at once."""
    values = _change_values(data, doc.content())
    update = doc.write(values)
    assert {k: doc.content().get(k) for k in values} == values
    return update


def _change_values(data: st.DataObject, current: dict[str, object]) -> dict[str, object]:
    if "full_name" not in current:
        return {"tenant_id": "t1", "full_name": data.draw(NAMES)}
    kind = data.draw(st.sampled_from(["field", "text", "tags", "delete", "recreate"]))
    if kind == "field":
        return {"full_name": data.draw(NAMES), "city": data.draw(CITIES)}
    if kind == "text":
        text = str(current.get("notes", ""))
        pos = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, len(text) - pos))
        return {"notes": text[:pos] + data.draw(WORDS) + text[pos + cut :]}
    if kind == "tags":
        return {"tags": sorted(data.draw(st.sets(st.sampled_from("abc"), max_size=3)))}
    return {"deleted": kind == "delete"}


@given(st.data())
def test_replicas_converge_under_drops_duplicates_reorders_partitions(data: st.DataObject) -> None:
    replicas = [Replica(client_id=100 + i) for i in range(3)]
    log: list[tuple[int, str, bytes]] = []  # every update ever made: (author, record, bytes)
    inflight: list[tuple[int, str, bytes]] = []  # (destination, record, bytes)
    partitioned: set[int] = set()

    for _ in range(data.draw(st.integers(5, 40), label="steps")):
        action = data.draw(st.sampled_from(["write", "deliver", "deliver", "dup", "drop",
                                            "partition", "heal", "compact"]))
        if action == "write":
            author = data.draw(st.integers(0, 2))
            rid = data.draw(st.sampled_from(RECORD_IDS))
            update = _local_change(data, replicas[author].doc(rid))
            log.append((author, rid, update))
            inflight.extend((dst, rid, update) for dst in range(3) if dst != author)
        elif action in ("deliver", "dup", "drop") and inflight:
            idx = data.draw(st.integers(0, len(inflight) - 1))
            dst, rid, update = inflight[idx]
            if action == "drop" or dst in partitioned:
                inflight.pop(idx)  # lost; full delivery at the end re-sends from the log
                continue
            if action == "deliver":
                inflight.pop(idx)
            replicas[dst].receive(rid, update)
        elif action == "partition":
            partitioned.add(data.draw(st.integers(0, 2)))
        elif action == "heal":
            partitioned.clear()
        elif action == "compact":
            replicas[data.draw(st.integers(0, 2))].compact(data.draw(st.sampled_from(RECORD_IDS)))

    # Full delivery: every replica receives every update, in a drawn order, some twice.
    for replica in replicas:
        order = data.draw(st.permutations(log))
        for _, rid, update in order:
            replica.receive(rid, update)
        for _, rid, update in order[: len(order) // 3]:
            replica.receive(rid, update)

    # The log in creation order is causal (a writer had only what was made before): the hub's
    # log read in sequence. One replica reads it that way (the fast path devices and the hub
    # use), and raw pycrdt applying it is the reference every replica must equal, so a merge
    # that loses or alters a change fails even when all replicas agree.
    log_reader = Replica(client_id=200)
    reference = {rid: Y.Doc() for rid in RECORD_IDS}
    for _, rid, update in log:
        log_reader.doc(rid).apply(update, in_order=True)
        reference[rid].apply_update(update)
    for rid in RECORD_IDS:
        contents = [r.doc(rid).content() for r in replicas]
        expected = RecordDoc(PEOPLE, rid, state=bytes(reference[rid].get_update())).content()
        assert contents[0] == contents[1] == contents[2] == expected
        assert log_reader.doc(rid).content() == expected
        states = [RecordDoc(PEOPLE, rid, state=r.doc(rid).encode_state()).content()
                  for r in replicas]
        assert states[0] == contents[0]
        assert not any(r.doc(rid).has_pending() for r in replicas)
        if "full_name" in contents[0]:
            rows = [r.doc(rid).project() for r in replicas]
            assert rows[0] == rows[1] == rows[2]
