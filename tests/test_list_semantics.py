"""List fields merge by identity: ordered lists of elements with ids, and add-wins sets.

The property runs random concurrent element and set operations on 2–4 replicas, delivers every
update in an arbitrary order with duplicates, and compares every replica, at every step, to a
model of the documented rules (docs/decisions.md, "List fields"): each key of a list's root
Map is a register with Yjs' map rule (the later write wins; of two concurrent writes, the branch
of the higher client id), an element is live while it has a position and no tombstone, and live
elements sort by (position, id).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pycrdt as Y
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import RecordInvalid, UnsafeUpdate
from core.settings import SyncLimits
from schema import collection
from sync.position import between, salt_of
from sync.record import TRUSTED_LIMITS, RecordDoc, root_kinds
from sync.ycheck import OriginIndex, inspect

CANVAS = collection("canvas_pages")
PEOPLE = collection("people")
ELEMENT_IDS = ("c0", "c1", "c2", "c3", "c4")
PROPS = {"type": ("kpi", "table", "bar_chart"), "title": ("", "Revenue", "Visits")}
"""Properties of a canvas component the operations set, and the values they take."""
TAGS = ("hot", "nri", "vip")

# --- the model -----------------------------------------------------------------------------------

ItemId = tuple[int, str]
"""(op number, key): the one item an op writes on a key."""


@dataclass
class Op:
    client: int
    doc: str
    sets: dict[str, tuple[Any, ItemId | None]] = field(default_factory=dict)
    """key → (value, origin: the item the writer saw last on that key)."""
    deletes: set[ItemId] = field(default_factory=set)
    deps: set[int] = field(default_factory=set)


class Model:
    """Every op ever made, and which each replica has applied (held back until its deps are)."""

    def __init__(self, replicas: int) -> None:
        self.ops: list[Op] = []
        self.applied: list[set[int]] = [set() for _ in range(replicas)]
        self.delivered: list[set[int]] = [set() for _ in range(replicas)]
        self.last_op: dict[tuple[int, str], int] = {}

    def make(self, replica: int, client: int, doc: str, sets: dict[str, Any], deletes: set[str]
             ) -> None:
        """Record an op of ``replica`` on ``doc``: writes on keys as it sees them, applied there
        at once. Like a Yjs update encoded from a state vector, it carries every delete its
        replica holds on the document, and follows the client's previous items there."""
        op = Op(client, doc)
        for key in deletes:
            item = self.winner(replica, key)
            assert item is not None
            op.deletes.add(item)
        keys: set[str] = set()
        for n in self.applied[replica]:
            if self.ops[n].doc == doc:
                op.deletes |= self.ops[n].deletes
                keys |= self.ops[n].sets.keys()
        for key in keys:  # Yjs deletes every item of a key but its last one
            last = self.winner(replica, key, include_deleted=True)
            op.deletes |= {(n, key) for n in self.applied[replica]
                           if key in self.ops[n].sets and (n, key) != last}
        op.deps |= {item[0] for item in op.deletes}
        for key, value in sets.items():
            origin = self.winner(replica, key, include_deleted=True)
            op.sets[key] = (value, origin)
            if origin is not None:
                op.deps.add(origin[0])
        if not op.sets and not op.deletes:
            return
        if op.sets and (client, doc) in self.last_op:  # (an op that only deletes has no clocks)
            op.deps.add(self.last_op[client, doc])
        n = len(self.ops)
        self.ops.append(op)
        if op.sets:
            self.last_op[client, doc] = n
        self.applied[replica].add(n)
        self.delivered[replica].add(n)

    def deliver(self, replica: int, n: int) -> None:
        self.delivered[replica].add(n)
        progress = True
        while progress:
            progress = False
            for m in sorted(self.delivered[replica] - self.applied[replica]):
                if self.ops[m].deps <= self.applied[replica]:
                    self.applied[replica].add(m)
                    progress = True

    def winner(self, replica: int, key: str, *, include_deleted: bool = False) -> ItemId | None:
        """The visible item on ``key``: from the start, follow the higher client at each fork."""
        children: dict[ItemId | None, list[tuple[int, ItemId]]] = defaultdict(list)
        deleted: set[ItemId] = set()
        for n in self.applied[replica]:
            op = self.ops[n]
            deleted |= op.deletes
            if key in op.sets:
                children[op.sets[key][1]].append((op.client, (n, key)))
        item: ItemId | None = None
        while children[item]:
            item = max(children[item])[1]
        if item is not None and item in deleted and not include_deleted:
            return None
        return item

    def entries(self, replica: int, prefix: str) -> dict[str, Any]:
        keys = {k for n in self.applied[replica] for k in self.ops[n].sets if k.startswith(prefix)}
        out = {}
        for key in keys:
            item = self.winner(replica, key)
            if item is not None:
                out[key[len(prefix):]] = self.ops[item[0]].sets[key][0]
        return out


def model_list(entries: dict[str, Any]) -> tuple[list[str], dict[str, str], list[dict[str, Any]]]:
    """(live ids in order, positions, elements) of an ordered list's entries, by the rules."""
    pos = {k[4:]: v for k, v in entries.items() if k.startswith("pos/")}
    dead = {k.split("/")[1] for k in entries if k.startswith("del/")}
    order = sorted((e for e in pos if e not in dead), key=lambda e: (pos[e], e))
    elements = []
    for e in order:
        props = {k.split("/")[2]: v for k, v in entries.items() if k.startswith(f"val/{e}/")}
        elements.append({"id": e, **dict(sorted(props.items()))})
    return order, pos, elements


# --- the property --------------------------------------------------------------------------------

def _base() -> tuple[bytes, bytes]:
    canvas = RecordDoc(CANVAS, "page", client_id=1)
    person = RecordDoc(PEOPLE, "p1", client_id=1)
    return (canvas.write({"tenant_id": "t1", "title": "Tower A"}),
            person.write({"tenant_id": "t1", "full_name": "Zara Khan"}))


def _operate(data: st.DataObject, model: Model, r: int, client: int,
             canvas: RecordDoc, person: RecordDoc) -> tuple[str, bytes]:
    """One random operation at replica ``r``, on the engine and in the model."""
    salt = salt_of(client)
    entries = model.entries(r, "L:")
    order, pos, _ = model_list(entries)
    ops = ["set_add", "set_remove"] + (["insert"] if len(order) < len(ELEMENT_IDS) else [])
    ops += ["move", "update", "remove"] if order else []
    op = data.draw(st.sampled_from(ops), label="op")
    sets: dict[str, Any] = {}
    deletes: set[str] = set()
    if op in ("set_add", "set_remove"):
        keys = model.entries(r, "S:")
        members = _members(keys)
        tag = data.draw(st.sampled_from(TAGS), label="tag")
        if op == "set_add" and tag not in members:
            sets[f"S:{tag}/{salt}"] = True
        elif op == "set_remove":
            deletes |= {f"S:{k}" for k in keys if k.rpartition("/")[0] == tag}
        wanted = members | {tag} if op == "set_add" else members - {tag}
        update = person.write({"tags": sorted(wanted)})
        model.make(r, client, "person", sets, deletes)
        return "person", update
    if op == "insert":
        eid = data.draw(st.sampled_from([e for e in ELEMENT_IDS if e not in order]), label="id")
        index = data.draw(st.integers(0, len(order)), label="index")
        props = {"type": data.draw(st.sampled_from(PROPS["type"]), label="type")}
        if data.draw(st.booleans(), label="titled?"):
            props["title"] = data.draw(st.sampled_from(PROPS["title"]), label="title")
        left = pos[order[index - 1]] if index else None
        right = pos[order[index]] if index < len(order) else None
        sets[f"L:pos/{eid}"] = between(left, right, salt)
        deletes |= {f"L:{k}" for k in entries if k.startswith(f"del/{eid}/")}
        stale = {k for k in entries if k.startswith(f"val/{eid}/")}
        deletes |= {f"L:{k}" for k in stale if k.split("/")[2] not in props}
        sets.update({f"L:val/{eid}/{p}": v for p, v in props.items()
                     if f"val/{eid}/{p}" not in entries or entries[f"val/{eid}/{p}"] != v})
        update = canvas.insert_element("components", index, {"id": eid, **props})
    else:
        eid = data.draw(st.sampled_from(order), label="id")
        if op == "move":
            others = [e for e in order if e != eid]
            index = data.draw(st.integers(0, len(others)), label="index")
            left = pos[others[index - 1]] if index else None
            right = pos[others[index]] if index < len(others) else None
            sets[f"L:pos/{eid}"] = between(left, right, salt)
            update = canvas.move_element("components", eid, index)
        elif op == "update":
            prop = data.draw(st.sampled_from(sorted(PROPS)), label="prop")
            value = data.draw(st.sampled_from(PROPS[prop]), label="value")
            if entries.get(f"val/{eid}/{prop}") != value or f"val/{eid}/{prop}" not in entries:
                sets[f"L:val/{eid}/{prop}"] = value
            update = canvas.update_element("components", eid, {prop: value})
        else:
            sets[f"L:del/{eid}/{salt}"] = True
            deletes.add(f"L:pos/{eid}")
            deletes |= {f"L:{k}" for k in entries if k.startswith(f"val/{eid}/")}
            update = canvas.remove_element("components", eid)
    model.make(r, client, "canvas", sets, deletes)
    return "canvas", update


def _assert_matches(model: Model, r: int, canvas: RecordDoc, person: RecordDoc) -> None:
    elements = canvas.content()["components"]
    ids = [e["id"] for e in elements]
    assert len(ids) == len(set(ids)), f"duplicated element: {ids}"
    assert elements == model_list(model.entries(r, "L:"))[2]
    assert person.content()["tags"] == sorted(_members(model.entries(r, "S:")))


def _members(keys: dict[str, Any]) -> set[str]:
    return {k.rpartition("/")[0] for k in keys}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_concurrent_list_and_set_operations_converge_to_the_model(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 4), label="replicas")
    clients = data.draw(st.lists(st.integers(2, 40), min_size=n, max_size=n, unique=True))
    base = _base()
    docs = []
    for client in clients:
        canvas = RecordDoc(CANVAS, "page", client_id=client)
        person = RecordDoc(PEOPLE, "p1", client_id=client)
        canvas.apply(base[0])
        person.apply(base[1])
        docs.append((canvas, person))
    model = Model(n)
    sent: list[tuple[int, str, bytes, int | None]] = []  # (author, doc, update, model op)
    inflight: list[tuple[int, int]] = []  # (destination, index into sent)

    def deliver(dst: int, i: int) -> None:
        _, which, update, op = sent[i]
        canvas, person = docs[dst]
        (canvas if which == "canvas" else person).apply(update)
        if op is not None:
            model.deliver(dst, op)

    for _ in range(data.draw(st.integers(4, 30), label="steps")):
        if inflight and data.draw(st.booleans(), label="deliver?"):
            k = data.draw(st.integers(0, len(inflight) - 1), label="which")
            dst, i = inflight[k] if data.draw(st.booleans(), label="dup?") else inflight.pop(k)
            deliver(dst, i)
        else:
            r = data.draw(st.integers(0, n - 1), label="replica")
            before = len(model.ops)
            which, update = _operate(data, model, r, clients[r], *docs[r])
            op = before if len(model.ops) > before else None
            sent.append((r, which, update, op))
            inflight.extend((dst, len(sent) - 1) for dst in range(n) if dst != r)
        for r in range(n):
            _assert_matches(model, r, *docs[r])

    for dst in range(n):
        order = data.draw(st.permutations(range(len(sent))), label="final order")
        for i in order + order[: len(order) // 3]:
            deliver(dst, i)
    for r in range(n):
        assert model.applied[r] == set(range(len(model.ops)))
        _assert_matches(model, r, *docs[r])
    contents = [(c.content(), p.content()) for c, p in docs]
    assert all(c == contents[0] for c in contents)


# --- whole-list writes ---------------------------------------------------------------------------

element = st.fixed_dictionaries({"id": st.sampled_from(ELEMENT_IDS),
                                 "type": st.sampled_from(PROPS["type"])},
                                optional={"title": st.text(alphabet="ab é", max_size=2)})
element_lists = st.lists(element, max_size=5, unique_by=lambda e: e["id"])


@settings(max_examples=80, deadline=None)
@given(st.lists(element_lists, min_size=1, max_size=5))
def test_a_whole_list_write_reads_back_and_changes_only_what_differs(
        targets: list[list[dict[str, Any]]]) -> None:
    doc = RecordDoc(CANVAS, "page", client_id=5)
    doc.write({"tenant_id": "t1", "title": "Tower A"})
    for target in targets:
        doc.write({"components": target})
        assert doc.content()["components"] == [
            {"id": e["id"], **dict(sorted((k, v) for k, v in e.items() if k != "id"))}
            for e in target]
        before = doc.state_vector()
        doc.write({"components": doc.content()["components"]})
        assert doc.state_vector() == before, "writing the same list again wrote something"


def _canvas(client: int, state: bytes | None = None) -> RecordDoc:
    doc = RecordDoc(CANVAS, "page", client_id=client, state=state)
    if state is None:
        doc.write({"tenant_id": "t1", "title": "Tower A", "components": [
            {"id": "c1", "type": "kpi"}, {"id": "c2", "type": "table"}]})
    return doc


def _exchange(a: RecordDoc, b: RecordDoc, ua: bytes, ub: bytes) -> None:
    a.apply(ub)
    b.apply(ua)
    assert a.content() == b.content()


def test_whole_list_writes_from_two_replicas_keep_each_element_once() -> None:
    a = _canvas(1)
    b = _canvas(2, a.encode_state())
    ua = a.write({"components": [{"id": "c1", "type": "kpi"}, {"id": "c2", "type": "table"},
                                 {"id": "c3", "type": "bar_chart"}]})
    ub = b.write({"components": [{"id": "c4", "type": "line_chart"}, {"id": "c1", "type": "kpi"},
                                 {"id": "c2", "type": "table"}]})
    _exchange(a, b, ua, ub)
    assert [e["id"] for e in a.content()["components"]] == ["c4", "c1", "c2", "c3"]


def test_an_element_moved_on_one_side_and_edited_on_the_other_keeps_both() -> None:
    a = _canvas(1)
    b = _canvas(2, a.encode_state())
    ua = a.move_element("components", "c1", 1)
    ub = b.update_element("components", "c1", {"title": "Revenue"})
    _exchange(a, b, ua, ub)
    assert a.content()["components"] == [{"id": "c2", "type": "table"},
                                         {"id": "c1", "type": "kpi", "title": "Revenue"}]


def test_a_removal_wins_over_a_concurrent_edit_or_move() -> None:
    a = _canvas(1)
    b = _canvas(2, a.encode_state())
    c = _canvas(3, a.encode_state())
    ua = a.remove_element("components", "c1")
    ub = b.update_element("components", "c1", {"title": "Revenue"})
    uc = c.move_element("components", "c1", 1)
    for doc, updates in ((a, (ub, uc)), (b, (uc, ua)), (c, (ua, ub))):
        for update in updates:
            doc.apply(update)
    assert a.content() == b.content() == c.content()
    assert a.content()["components"] == [{"id": "c2", "type": "table"}]


def test_a_removed_element_can_be_inserted_again_without_its_old_properties() -> None:
    a = _canvas(1)
    a.remove_element("components", "c1")
    a.insert_element("components", 1, {"id": "c1", "type": "table", "title": "again"})
    assert a.content()["components"] == [{"id": "c2", "type": "table"},
                                         {"id": "c1", "type": "table", "title": "again"}]


def _person(client: int, state: bytes | None = None) -> RecordDoc:
    doc = RecordDoc(PEOPLE, "p1", client_id=client, state=state)
    if state is None:
        doc.write({"tenant_id": "t1", "full_name": "Zara Khan", "tags": ["hot", "vip"]})
    return doc


def test_set_changes_of_different_members_all_apply() -> None:
    a = _person(1)
    b = _person(2, a.encode_state())
    ua = a.write({"tags": ["hot", "nri"]})  # removes vip, adds nri
    ub = b.write({"tags": ["vip"]})  # removes hot
    _exchange(a, b, ua, ub)
    assert a.content()["tags"] == ["nri"]


@pytest.mark.parametrize("clients", [(1, 2), (2, 1)])
def test_a_set_add_wins_over_a_concurrent_removal_of_the_same_member(
        clients: tuple[int, int]) -> None:
    a = _person(clients[0])
    b = _person(clients[1], a.encode_state())
    a.write({"tags": ["hot"]})
    ua = a.write({"tags": ["hot", "vip"]})  # removed, then added again
    ub = b.write({"tags": ["hot"]})  # removed, not seeing the add
    a.apply(ub)
    b.apply(ua)
    assert a.content()["tags"] == b.content()["tags"] == ["hot", "vip"]
    ua = a.write({"tags": ["hot", "nri", "vip"]})
    ub = b.write({"tags": ["hot", "nri", "vip"]})  # the same add on both sides
    vb = b.write({"tags": ["hot", "vip"]})  # then removed where only its own add was seen
    a.apply(ub)
    a.apply(vb)
    b.apply(ua)
    assert a.content()["tags"] == b.content()["tags"] == ["hot", "nri", "vip"]


def test_bad_element_changes_are_refused_and_leave_the_document_alone() -> None:
    a = _canvas(1)
    before = a.encode_state()
    for change in (lambda: a.insert_element("components", 0, {"type": "kpi"}),
                   lambda: a.insert_element("components", 0, {"id": "c1"}),
                   lambda: a.insert_element("components", 5, {"id": "c9"}),
                   lambda: a.insert_element("components", 0, {"id": "a/b"}),
                   lambda: a.move_element("components", "c9", 0),
                   lambda: a.update_element("components", "c1", {"id": "c7"}),
                   lambda: a.remove_element("title", "c1"),
                   lambda: a.write({"components": [{"id": "c1"}, {"id": "c1"}]})):
        with pytest.raises(RecordInvalid):
            change()
    assert a.encode_state() == before


def test_entries_outside_the_layout_do_not_project() -> None:
    raw = Y.Doc(client_id=9)
    raw.get("fields", type=Y.Map).update({"tenant_id": "t1", "title": "T"})
    raw.get("components.list", type=Y.Map)["pos/c1"] = 7
    with pytest.raises(RecordInvalid, match="pos/c1"):
        RecordDoc(CANVAS, "page", state=raw.get_update()).project()


# --- documents of the former layout (a root Array replaced whole) ---------------------------------

def _former(client: int = 9) -> bytes:
    raw = Y.Doc(client_id=client)
    raw.get("fields", type=Y.Map).update({"tenant_id": "t1", "title": "Tower A"})
    raw.get("components", type=Y.Array).extend(
        [{"id": "c1", "type": "kpi"}, {"type": "table"}, {"id": "c1", "type": "table"}])
    return bytes(raw.get_update())


def test_a_document_of_the_former_layout_reads_as_before() -> None:
    doc = RecordDoc(CANVAS, "page", state=_former())
    assert doc.content()["components"] == [{"id": "c1", "type": "kpi"},
                                           {"id": "legacy-1", "type": "table"}]


def test_concurrent_edits_of_a_former_layout_document_migrate_and_converge() -> None:
    a = RecordDoc(CANVAS, "page", client_id=1, state=_former())
    b = RecordDoc(CANVAS, "page", client_id=2, state=_former())
    ua = a.insert_element("components", 2, {"id": "c3", "type": "kpi"})
    ub = b.update_element("components", "c1", {"title": "Revenue"})
    _exchange(a, b, ua, ub)
    assert a.content()["components"] == [{"id": "c1", "type": "kpi", "title": "Revenue"},
                                         {"id": "legacy-1", "type": "table"},
                                         {"id": "c3", "type": "kpi"}]
    raw = Y.Doc()
    raw.apply_update(a.encode_state())
    assert raw.get("components", type=Y.Array).to_py() == []


def test_tags_of_the_former_layout_read_as_a_set_and_migrate_on_write() -> None:
    raw = Y.Doc(client_id=9)
    raw.get("fields", type=Y.Map).update({"tenant_id": "t1", "full_name": "Zara Khan"})
    raw.get("tags", type=Y.Array).extend(["vip", "hot", "vip", "nri"])
    doc = RecordDoc(PEOPLE, "p1", client_id=1, state=raw.get_update())
    assert doc.content()["tags"] == ["hot", "nri", "vip"]
    doc.write({"tags": ["hot", "vip"]})
    assert RecordDoc(PEOPLE, "p1", state=doc.encode_state()).content()["tags"] == ["hot", "vip"]


def _inspect(state: bytes, update: bytes, client: int) -> None:
    index = OriginIndex.from_state(state, TRUSTED_LIMITS)
    inspect(update, limits=SyncLimits(), roots=root_kinds(CANVAS), held=index.state_vector,
            bound_clients={client}, index=index)


def test_the_validator_admits_list_changes_and_migrations_but_no_write_to_a_retired_array() -> None:
    state = _former()
    doc = RecordDoc(CANVAS, "page", client_id=4, state=state)
    _inspect(state, doc.insert_element("components", 0, {"id": "c9", "type": "bar_chart"}), 4)
    raw = Y.Doc(client_id=5)
    raw.apply_update(state)
    before = raw.get_state()
    raw.get("components", type=Y.Array).append({"id": "c8"})
    with pytest.raises(UnsafeUpdate, match="content"):
        _inspect(state, bytes(raw.get_update(before)), 5)
