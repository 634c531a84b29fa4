"""Golden vectors: frames and CRDT updates any client must reproduce and parse identically.

Everything is built from fixed inputs (fixed CRDT client ids, a fixed Ed25519 key, a fixed
nonce), so the bytes depend only on the encoders. The committed copy lives in
``ios_bridge/vectors/v<protocol version>/``; a test rebuilds it and fails on any drift, so a
change to the bytes on the wire needs a protocol version bump (and a new folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.auth import DeviceKey
from core.errors import VelocityError
from core.settings import SyncLimits
from ios_bridge.contract import render
from ios_bridge.wire import to_json
from schema import collection
from sync import protocol as p
from sync.record import TRUSTED_LIMITS, RecordDoc
from sync.yupdate import decode_state_vector, decode_update

COMMITTED = Path(__file__).parent / "vectors"
DEVICE_ID = "dev-ipad-0001"
DEVICE_SEED = bytes(range(1, 33))
"""The fixed private key of the vectors' device (never a real device's)."""
NONCE = bytes(range(100, 132))
IPAD, DIRECTOR = 1_000_001, 2_000_002
"""The CRDT client ids of the two replicas the record vectors are written on."""
PERSON = {"city": "Dubai", "full_name": "Zara Khan", "owner_id": "u-broker-7",
          "primary_phone": "+971500000001", "tenant_id": "t1"}
LEAD = {"budget_max": 22_500_000.5, "budget_min": 15_000_000, "owner_id": "u-broker-7",
        "person_id": "p-1001", "tenant_id": "t1"}
"""Keys in sorted order: registers are set in the order the vector lists them (JSON files
keep keys sorted), and the order shows in the update's bytes."""


# --- CRDT updates ---------------------------------------------------------------------------


def _update_json(update: bytes) -> dict[str, Any]:
    """The structure of a Yjs v1 update, as our strict decoder reads it."""
    decoded = decode_update(update, TRUSTED_LIMITS, resolve=False)
    structs = []
    for s in decoded.structs:
        entry: dict[str, Any] = {"kind": s.kind.value, "client": s.client, "clock": s.clock,
                                 "length": s.length}
        if s.content is not None:
            entry["content"] = s.content.name.lower()
        for name in ("origin", "right_origin"):
            ref = getattr(s, name)
            if ref is not None:
                entry[name] = {"client": ref.client, "clock": ref.clock}
        for name in ("parent", "parent_sub", "text"):
            if getattr(s, name) is not None:
                entry[name] = getattr(s, name)
        if s.values:
            entry["values"] = list(s.values)
        structs.append(entry)
    return {"structs": structs,
            "delete_set": {str(c): [list(r) for r in ranges]
                           for c, ranges in decoded.delete_set.items()}}


def _step(name: str, doc: RecordDoc, update: bytes, edit: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name, "edit": edit, "client_id": doc.client_id, "update_hex": update.hex(),
        "update": _update_json(update),
        "content_after": _content(doc),
        "state_vector_after": {str(c): k for c, k in sorted(
            decode_state_vector(doc.state_vector(), TRUSTED_LIMITS).items())},
    }


def _content(doc: RecordDoc) -> dict[str, Any]:
    return dict(sorted(doc.project().model_dump(mode="json", exclude_none=True).items()))


def crdt_vectors() -> dict[str, Any]:
    """Typical record edits on an iPad and a director's replica, and their merge."""
    people = collection("people")
    ipad = RecordDoc(people, "p-1001", client_id=IPAD)
    steps = [_step("create_person", ipad, ipad.write(PERSON), {"write": PERSON})]
    for name, edit in (
        ("set_register", {"city": "Mumbai"}),
        ("clear_register", {"primary_phone": None}),
        ("write_notes", {"notes": "Wants a sea view."}),
        ("edit_notes_middle", {"notes": "Wants a 3BHK with a sea view."}),
        ("set_tags", {"tags": ["vip", "nri"]}),
    ):
        steps.append(_step(name, ipad, ipad.write(edit), {"write": edit}))
    emoji = "Met at the site 🏙️ on Friday."
    steps.append(_step("notes_with_emoji", ipad, ipad.write({"notes": emoji}),
                       {"write": {"notes": emoji}}))

    base = ipad.encode_state()
    director = RecordDoc(people, "p-1001", client_id=DIRECTOR, state=base)
    offline_ipad = ipad.write({"city": "Pune", "segment": "investor"})
    offline_director = director.write({"city": "Goa"})
    ipad.apply(offline_director)
    director.apply(offline_ipad)
    if ipad.encode_state() != director.encode_state():
        raise AssertionError("the vectors' replicas did not converge")
    merge = {
        "name": "concurrent_register_edits",
        "base_state_hex": base.hex(),
        "updates": [
            {"client_id": IPAD, "edit": {"city": "Pune", "segment": "investor"},
             "update_hex": offline_ipad.hex(), "update": _update_json(offline_ipad)},
            {"client_id": DIRECTOR, "edit": {"city": "Goa"},
             "update_hex": offline_director.hex(), "update": _update_json(offline_director)},
        ],
        "merged_content": _content(ipad),
        "merged_state_hex": ipad.encode_state().hex(),
        "rule": "concurrent sets of one register: Yjs keeps the value of the higher client id",
    }

    leads = collection("leads")
    lead = RecordDoc(leads, "l-2001", client_id=IPAD)
    lead_steps = [
        _step("create_lead", lead, lead.write(LEAD), {"write": LEAD}),
        _step("advance_stage", lead, lead.write({"stage": "SITE_VISIT"}),
              {"write": {"stage": "SITE_VISIT"}}),
        _step("delete_tombstone", lead, lead.delete(), {"write": {"deleted": True}}),
    ]
    return {
        "protocol_version": p.PROTOCOL_VERSION,
        "note": "Each step applies to the state after the previous step of the same record. "
                "update_hex is a Yjs v1 update; content_after is the record it projects to "
                "(the schema's defaults filled in, nulls left out). Registers are set in the "
                "order the edit lists them.",
        "records": [
            {"guid": "people/p-1001", "collection": "people", "steps": steps},
            {"guid": "leads/l-2001", "collection": "leads", "steps": lead_steps},
        ],
        "merges": [merge],
    }


# --- frames ---------------------------------------------------------------------------------


def _updates(crdt: dict[str, Any]) -> dict[str, bytes]:
    return {s["name"]: bytes.fromhex(s["update_hex"])
            for r in crdt["records"] for s in r["steps"]}


def frame_messages(crdt: dict[str, Any]) -> list[tuple[str, p.Message, str]]:
    """(name, message, what it shows) for every frame vector."""
    u = _updates(crdt)
    key = DeviceKey.from_bytes(DEVICE_SEED)
    snapshot = RecordDoc(collection("people"), "p-1001", state=u["create_person"])
    snapshot.apply(u["set_register"])
    return [
        ("hello_bootstrap", p.Hello(DEVICE_ID, 0, (IPAD,)), "first connection: cursor 0"),
        ("hello_resume", p.Hello(DEVICE_ID, 48_213, (IPAD, 1_000_002)),
         "resuming from a stored cursor, two client ids"),
        ("challenge", p.Challenge(NONCE), "the hub's nonce"),
        ("auth", p.Auth(key.sign_challenge(NONCE, DEVICE_ID)),
         "Ed25519 over 'velocity-sync-v1' + nonce + device_id, with the vectors' device key"),
        ("welcome_bootstrap", p.Welcome("t1", "u-broker-7", "SENIOR_BROKER", 0, 2),
         "authenticated; two snapshots follow"),
        ("pull_batch_snapshots", p.PullBatch((
            p.PullItem(0, "people/p-1001", p.ItemKind.SNAPSHOT, snapshot.encode_state()),
            p.PullItem(0, "leads/l-2001", p.ItemKind.SNAPSHOT, u["create_lead"]),
        ), 0, True), "a bootstrap page: snapshots, more = true"),
        ("pull_batch_caught_up", p.PullBatch((), 48_213, False),
         "the last bootstrap batch: the cursor to store, more = false"),
        ("pull_batch_live_update", p.PullBatch((
            p.PullItem(48_214, "leads/l-2001", p.ItemKind.UPDATE, u["advance_stage"]),
        ), 48_214, False), "a live change as it commits"),
        ("pull_batch_remove", p.PullBatch((
            p.PullItem(48_215, "leads/l-2001", p.ItemKind.REMOVE, b""),
        ), 48_215, False), "the lead was reassigned away: drop it and its unsent changes"),
        ("push_batch", p.PushBatch((
            p.PushItem("dev-ipad-0001:1", "people/p-1001", u["write_notes"]),
            p.PushItem("dev-ipad-0001:2", "people/p-1001", u["edit_notes_middle"]),
        )), "two outbox entries"),
        ("ack", p.Ack((("dev-ipad-0001:1", 48_216), ("dev-ipad-0001:2", 0))),
         "committed with its sequence; 0 = the hub already held it"),
        ("refusal_not_owner", p.Refusal("dev-ipad-0001:3", "leads/l-9", "not_owner",
                                        "lead l-9 belongs to another broker"),
         "refused for good: rebuild the document without it"),
        ("refusal_manager_only", p.Refusal("dev-ipad-0001:4", "opportunities/o-1",
                                           "manager_only_field",
                                           "only a director may set stage"), ""),
        ("refusal_retryable", p.Refusal("dev-ipad-0001:5", "people/p-1001", "worker_timeout",
                                        "the hub could not judge it in time"),
         "the hub's own trouble (RETRYABLE_REASONS): nothing stored, push it again"),
        *[(f"error_{reason}", p.Error(int(code), reason, message), "then the sender closes")
          for reason, code, message in ERRORS],
    ]


ERRORS = (
    ("malformed", p.CloseCode.PROTOCOL, "unknown message type 99"),
    ("bad_signature", p.CloseCode.AUTH, "device signature does not verify"),
    ("unknown_device", p.CloseCode.AUTH, "unknown device; pair it again"),
    ("revoked", p.CloseCode.FORBIDDEN, "device revoked; ask an admin to pair it again"),
    ("blocked", p.CloseCode.FORBIDDEN, "device blocked after refused updates"),
    ("client_id_taken", p.CloseCode.CONFLICT, "client id bound to another device"),
    ("too_large", p.CloseCode.TOO_LARGE, "frame of 5000000 bytes exceeds 4194304"),
    ("throttled", p.CloseCode.THROTTLED, "push at most once per 2.0 s; reconnect later"),
    ("unsupported_version", p.CloseCode.UNSUPPORTED_VERSION,
     "protocol version 2 is not supported (this hub speaks 1); update the app"),
    ("internal", p.CloseCode.INTERNAL, "internal hub error; retry later"),
)
"""One ERROR frame per close code and reason a device must handle."""

INVALID = (
    ("empty", b"", "malformed"),
    ("unknown_version", bytes([2, 1]), "unsupported_version"),
    ("unknown_type", bytes([1, 99]), "malformed"),
    ("truncated_string", bytes([1, 8, 5, 0x61]), "malformed"),
    ("trailing_byte", bytes([1, 10, 0xA0, 0x1F, 1, 0x61, 0, 0]), "malformed"),
    ("bad_utf8", bytes([1, 8, 1, 0x75, 1, 0x67, 1, 0x72, 1, 0xFF]), "malformed"),
    ("more_flag_2", bytes([1, 5, 0, 2, 0]), "malformed"),
    ("varint_over_53_bits", bytes([1, 5]) + b"\xff" * 8 + b"\x7f" + bytes([0, 0]), "malformed"),
    ("short_nonce", bytes([1, 2, 3, 1, 2, 3]), "malformed"),
    ("unknown_item_kind", bytes([1, 5, 1, 0, 1, 1, 1, 0x67, 9, 0]), "malformed"),
    ("id_too_long", bytes([1, 1, 1, 65]) + b"d" * 65 + bytes([0, 0]), "too_large"),
    ("hello_version_2", bytes([1, 1, 2, 1, 0x64, 0, 0]), "unsupported_version"),
    ("string_with_nul", bytes([1, 10, 0xA0, 0x1F, 1, 0x61, 1, 0]), "malformed"),
)
"""Frames a decoder must refuse, with the error family it refuses them as."""


def _decode_error(frame: bytes, expected: str) -> str:
    try:
        p.decode(frame, SyncLimits.model_construct())  # the defaults, whatever the env
    except VelocityError as exc:
        if exc.code != expected:
            raise AssertionError(f"invalid vector {frame.hex()}: {exc.code}, not {expected}") \
                from exc
        return exc.code
    raise AssertionError(f"invalid vector {frame.hex()} decoded")


def frame_vectors(crdt: dict[str, Any]) -> dict[str, Any]:
    key = DeviceKey.from_bytes(DEVICE_SEED)
    return {
        "protocol_version": p.PROTOCOL_VERSION,
        "device": {"device_id": DEVICE_ID, "private_key_hex": DEVICE_SEED.hex(),
                   "public_key_hex": key.public_bytes.hex()},
        "frames": [{"name": name, "shows": shows, "hex": p.encode(message).hex(),
                    "json": to_json(message)}
                   for name, message, shows in frame_messages(crdt)],
        "invalid": [{"name": name, "hex": frame.hex(), "refused_as": _decode_error(frame, code)}
                    for name, frame, code in INVALID],
    }


def build() -> dict[str, dict[str, Any]]:
    """Every vector file by name."""
    crdt = crdt_vectors()
    return {"crdt.json": crdt, "frames.json": frame_vectors(crdt)}


def committed_folder(version: int = p.PROTOCOL_VERSION) -> Path:
    """Where the committed vectors of a protocol version live."""
    return COMMITTED / f"v{version}"


def write(folder: Path) -> list[Path]:
    """Write every vector file into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in build().items():
        (folder / name).write_text(render(document), encoding="utf-8")
        written.append(folder / name)
    return written
