"""The field limits table (schema/limits.py): complete, documented, and enforced the same way by
an edge's local write and by projecting a document that arrived over sync (the REST half is in
test_hub_bad_input.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pycrdt as Y
import pytest

from core.errors import FieldTooLarge, RecordInvalid, UnsafeValue
from edge_agent.crypto import Sealer
from edge_agent.replica import Replica
from schema import COLLECTIONS, collection
from schema.crdt import list_root
from schema.limits import LIMITS, MAX_SAFE_INTEGER, markdown_table
from sync.position import between
from sync.record import RecordDoc

DOCS = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
PERSON = {"tenant_id": "t1", "full_name": "Zara Khan"}
SESSION = {"tenant_id": "t1", "consent_id": "c1", "started_at": "2026-01-01T00:00:00+00:00"}
CANVAS = {"tenant_id": "t1", "title": "Plan"}


def _table(approx_bytes: int, cid: str = "c1") -> dict[str, Any]:
    """A table component whose rows take about ``approx_bytes`` of JSON."""
    rows = [{"name": "x" * 90} for _ in range(approx_bytes // 100)]
    return {"id": cid, "type": "table", "title": "Leads", "data_rows": rows}


REFUSED: list[tuple[str, dict[str, Any], type[RecordInvalid], str]] = [
    ("people", {**PERSON, "tags": [f"t{i}" for i in range(101)]}, FieldTooLarge,
     "tags: 101 elements exceed 100"),
    ("people", {**PERSON, "tags": ["x" * 65]}, FieldTooLarge, "tags: element 0: 65 characters"),
    ("people", {**PERSON, "city": "x" * 501}, FieldTooLarge, "city: 501 characters exceed 500"),
    ("people", {**PERSON, "notes": "x" * 20_001}, FieldTooLarge, "notes: 20001 characters"),
    ("people", {**PERSON, "full_name": "Zara\x00"}, UnsafeValue, "full_name: a NUL character"),
    ("people", {**PERSON, "tags": ["a\x00"]}, UnsafeValue, "tags: a NUL character"),
    ("perception_sessions", {**SESSION, "frames_seen": MAX_SAFE_INTEGER + 1}, UnsafeValue,
     "frames_seen: an? (integer|number) beyond"),
    ("perception_sessions", {**SESSION, "signals": [f"s{i}" for i in range(51)]}, FieldTooLarge,
     "signals: 51 elements exceed 50"),
    ("canvas_pages", {**CANVAS, "components": [_table(600_000)]}, FieldTooLarge,
     r"components: element 0: \d+ bytes of JSON exceed 524288"),
    ("canvas_pages", {**CANVAS, "components": [_table(10, f"c{i}") for i in range(201)]},
     FieldTooLarge,
     "components: 201 elements exceed 200"),
    ("canvas_pages", {**CANVAS, "components": [{**_table(10), "config": {
        f"k{i}": i for i in range(65)}}]}, FieldTooLarge,
     "components: element 0: an object of 65 keys exceeds 64"),
    ("canvas_pages", {**CANVAS, "components": [{**_table(10), "config": {"n": 2**60}}]},
     UnsafeValue, r"components: an? (integer|number) beyond"),  # pycrdt reads a float back
    ("canvas_pages", {**CANVAS, "components": [{**_table(10), "config": {
        "n": float("inf")}}]}, UnsafeValue, "components: a non-finite number"),
    ("canvas_pages", {**CANVAS, "components": [{**_table(10), "title": "a\x00"}]},
     UnsafeValue, "components: a NUL character"),
]

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("people", {**PERSON, "tags": ["x" * 64] * 100, "city": "x" * 500, "notes": "😀" * 20_000}),
    ("perception_sessions", {**SESSION, "frames_seen": MAX_SAFE_INTEGER}),
    ("canvas_pages", {**CANVAS, "components": [_table(500_000, "big")]
                      + [_table(10, f"c{i}") for i in range(199)]}),
]


def test_every_field_of_every_collection_is_in_the_table() -> None:
    for name, coll in COLLECTIONS.items():
        assert set(LIMITS[name]) == set(coll.model.model_fields)


def test_the_protocol_doc_shows_the_table_as_the_code_has_it() -> None:
    assert markdown_table() in DOCS.read_text()


@pytest.mark.parametrize(("coll_name", "values", "error", "problem"), REFUSED,
                         ids=[r[3] for r in REFUSED])
def test_a_local_write_refuses_before_touching_the_document(
        coll_name: str, values: dict[str, Any], error: type[RecordInvalid], problem: str) -> None:
    doc = RecordDoc(collection(coll_name), "r1", client_id=5)
    with pytest.raises(error) as caught:
        doc.write(values)
    assert any(re.match(problem, p) for p in caught.value.problems), caught.value.problems
    assert doc.is_empty


@pytest.mark.parametrize(("coll_name", "values", "error", "problem"), REFUSED,
                         ids=[r[3] for r in REFUSED])
def test_a_synced_document_over_the_limits_does_not_project(
        coll_name: str, values: dict[str, Any], error: type[RecordInvalid], problem: str) -> None:
    """What the hub's gate does after applying a pushed update: project, and refuse."""
    doc = RecordDoc(collection(coll_name), "r1", state=_raw_pycrdt(coll_name, values))
    with pytest.raises(error) as caught:
        doc.project()
    assert any(re.match(problem, p) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(("coll_name", "values"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_values_at_the_limits_are_accepted(coll_name: str, values: dict[str, Any]) -> None:
    doc = RecordDoc(collection(coll_name), "r1", client_id=5)
    doc.write(values)
    assert RecordDoc(collection(coll_name), "r1", state=doc.encode_state()).project()


def _raw_pycrdt(coll_name: str, values: dict[str, Any]) -> bytes:
    """A document written with pycrdt directly, as a device that skips validation would."""
    coll = collection(coll_name)
    doc = Y.Doc(client_id=9)
    fields = doc.get("fields", type=Y.Map)
    for name, value in values.items():
        kind = coll.kinds[name].value
        if kind == "text":
            doc.get(name, type=Y.Text).insert(0, value)
        elif kind == "set":
            members = doc.get(list_root(name, coll.kinds[name]), type=Y.Map)
            for member in value:
                members[f"{member}/1"] = True
        elif kind == "ordered":
            entries = doc.get(list_root(name, coll.kinds[name]), type=Y.Map)
            position = None
            for element in value:
                position = between(position, None, "1")
                entries[f"pos/{element['id']}"] = position
                for prop, prop_value in element.items():
                    if prop != "id":
                        entries[f"val/{element['id']}/{prop}"] = prop_value
        elif isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
            fields[name] = float(value)  # pycrdt panics on ints past 2^63; 2^53 + 1 as float
        else:
            fields[name] = value
    return bytes(doc.get_update())


@pytest.mark.anyio
async def test_the_edge_replica_keeps_nothing_of_a_refused_write(tmp_path: Path) -> None:
    async with Replica(tmp_path / "r.db", Sealer(b"k" * 32), client_id=11) as replica:
        with pytest.raises(FieldTooLarge):
            await replica.write("people", "p1", {**PERSON, "tags": ["t"] * 101})
        assert await replica.pending_count() == 0
        await replica.write("people", "p1", {**PERSON, "tags": ["t"] * 100})
        assert await replica.pending_count() == 1
