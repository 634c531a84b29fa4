"""The exported contract: JSON Schemas of every synced entity and every protocol message.

Everything here is derived from `schema/` (the record models and their CRDT layout) and
`sync.protocol` (through `ios_bridge.wire`), so the contract cannot drift from the code that
speaks it. `export` writes it under ``DIR/v<protocol version>/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ios_bridge.pairing import pairing_payload_schema
from ios_bridge.wire import LIMITS, MESSAGES, frame_layout
from schema import COLLECTIONS, FIELDS_ROOT, Collection
from schema.crdt import list_root
from schema.limits import limits_of
from sync import protocol as p

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
CONTRACT_ID = "https://velocity.example/contract"
MAX_SAFE_INTEGER = (1 << 53) - 1


def entity_schema(coll: Collection) -> dict[str, Any]:
    """One collection's record as JSON Schema, with its document layout under ``x-velocity``."""
    schema = coll.model.model_json_schema(mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = f"{CONTRACT_ID}/v{p.PROTOCOL_VERSION}/entities/{coll.name}.json"
    schema["x-velocity"] = {
        "collection": coll.name,
        "guid": f"{coll.name}/<id>",
        "document": {
            "registers_root": FIELDS_ROOT,
            "fields": {name: kind.value for name, kind in coll.kinds.items()},
            "list_roots": {name: list_root(name, coll.kinds[name]) for name in coll.lists},
            "note": "register: a key of the root Map 'fields'; text: a root Text named after "
                    "the field; set: a root Map (list_roots) holding '<member>/<replica>': true "
                    "for each replica's add of a member (read back sorted; a removal deletes "
                    "every key of the member); ordered: a root Map (list_roots) holding "
                    "'pos/<id>' (a position string; elements sort by position, then id), "
                    "'val/<id>/<prop>' (one property of the element) and "
                    "'del/<id>/<replica>': true (removed; an element is live with a position "
                    "and no such key). <replica> is the writer's client id in base 62 (digits "
                    "0-9A-Za-z), lowest digit first. 'id' is the guid's tail, never stored in "
                    "the document.",
        },
        "limits": {name: {k: v for k, v in asdict(limit).items() if v is not None}
                   for name, limit in limits_of(coll).items()},
        "value_rules": "no NUL character in any string; integers within ±(2^53 - 1); finite "
                       "numbers only (the hub refuses the update otherwise)",
        "owner_scoped": coll.owner_scoped,
        "manager_only_fields": sorted(coll.manager_only_fields),
    }
    return schema


def _field_schema(field: dict[str, Any]) -> dict[str, Any]:
    wire = field["wire"]
    if wire == "varuint":
        return {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
    if wire == "bool":
        return {"type": "boolean"}
    if wire == "u8":
        out: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 255}
        if "enum" in field:
            out["enum"] = sorted(field["enum"].values())
            out["x-enum-names"] = field["enum"]
        return out
    if wire == "string":
        return {"type": "string", "minLength": field["min_chars"],
                "maxLength": field["max_chars"]}
    if wire == "bytes":
        return {"type": "string", "contentEncoding": "base16", "pattern": "^([0-9a-f]{2})*$",
                "minLength": 2 * field["min_bytes"], "maxLength": 2 * _bound(field["max_bytes"])}
    if wire == "list":
        return {"type": "array", "maxItems": _bound(field["max_items"]),
                "items": _field_schema(field["item"])}
    if wire == "struct":
        return _object(field["fields"])
    raise ValueError(f"unknown wire type {wire!r}")


def _bound(value: int | str) -> int:
    return value if isinstance(value, int) else LIMITS[value]


def _object(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "required": [f["name"] for f in fields],
            "properties": {f["name"]: {**_field_schema(f), "x-wire": f["wire"]} for f in fields}}


def message_schema(msg_type: p.MessageType) -> dict[str, Any]:
    """One protocol message's JSON form (as in the golden vectors) as JSON Schema."""
    spec = MESSAGES[msg_type]
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{CONTRACT_ID}/v{p.PROTOCOL_VERSION}/messages/{msg_type.name.lower()}.json",
        "title": msg_type.name,
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "fields"],
        "properties": {"type": {"const": msg_type.name}, "fields": _object(spec["fields"])},
        "x-velocity": {"type_code": int(msg_type), "direction": spec["direction"],
                       "wire_fields": spec["fields"]},
    }


def contract() -> dict[str, dict[str, Any]]:
    """Every exported file by its path relative to the versioned folder."""
    files: dict[str, dict[str, Any]] = {
        f"entities/{name}.json": entity_schema(coll) for name, coll in COLLECTIONS.items()}
    files |= {f"messages/{t.name.lower()}.json": message_schema(t) for t in MESSAGES}
    files["frames.json"] = frame_layout()
    files["pairing.json"] = pairing_payload_schema()
    files["perception/blendshape_second.json"] = _perception_schema()
    files["index.json"] = {
        "protocol_version": p.PROTOCOL_VERSION,
        "entities": sorted(COLLECTIONS),
        "messages": [t.name for t in MESSAGES],
        "files": sorted(files),
    }
    return files


def _perception_schema() -> dict[str, Any]:
    from ios_bridge.perception import BlendshapeSecond

    schema = BlendshapeSecond.model_json_schema()
    schema["$schema"] = SCHEMA_DIALECT
    return schema


def render(document: dict[str, Any]) -> str:
    """The one JSON spelling used for every exported file (stable for diffs and tests)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(out_dir: Path) -> list[Path]:
    """Write the contract under ``out_dir/v<protocol version>/`` (the golden vectors under its
    ``vectors/``); returns the files written."""
    from ios_bridge import vectors

    root = Path(out_dir) / f"v{p.PROTOCOL_VERSION}"
    written = vectors.write(root / "vectors")
    for rel, document in contract().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written
