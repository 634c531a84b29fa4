"""A second implementation of the device side, written only from the exported contract.

It reads the folder `velocity ios export` writes (``frames.json`` for the wire layout,
``entities/*.json`` for the document layout, ``pairing.json`` for the QR payload and the pairing
call) and imports nothing of this project: only the standard library and the client libraries an
app would use (pycrdt for Yjs documents, websockets, httpx, cryptography). The tests run it
against a real hub; if the contract left something out, this file could not be written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import websockets
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

MAX_SAFE = (1 << 53) - 1


class ContractError(Exception):
    """A frame, payload or answer that breaks the contract; ``code`` names the family."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Contract:
    """The exported contract, loaded from its versioned folder."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        self.folder = folder
        self.index = _load(folder / "index.json")
        self.frames = _load(folder / "frames.json")
        self.pairing = _load(folder / "pairing.json")
        self.entities = {name: _load(folder / "entities" / f"{name}.json")
                         for name in self.index["entities"]}
        self.version: int = self.frames["protocol_version"]
        self.by_name = {m["name"]: m for m in self.frames["messages"]}
        self.by_type = {m["type"]: m for m in self.frames["messages"]}

    def bound(self, value: int | str) -> int:
        return value if isinstance(value, int) else int(self.frames["limits"][value])


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --- frames ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ContractError("malformed", "truncated frame")
        self.pos += 1
        return self.data[self.pos - 1]

    def varuint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if value > MAX_SAFE:
                raise ContractError("malformed", "varint over 53 bits")
            if b < 0x80:
                return value

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ContractError("malformed", "truncated frame")
        self.pos += n
        return self.data[self.pos - n : self.pos]


def _w_varuint(out: bytearray, value: int) -> None:
    if not 0 <= value <= MAX_SAFE:
        raise ContractError("malformed", f"{value} is not a varuint")
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


class FrameCodec:
    """Encodes and decodes frames by the contract's layout; JSON form as in the vectors."""

    def __init__(self, contract: Contract) -> None:
        self.c = contract

    def encode(self, name: str, fields: dict[str, Any]) -> bytes:
        spec = self.c.by_name[name]
        out = bytearray([self.c.version, spec["type"]])
        self._w_struct(out, spec["fields"], fields)
        return bytes(out)

    def _w_struct(self, out: bytearray, specs: list[dict[str, Any]],
                  value: dict[str, Any]) -> None:
        for spec in specs:
            self._w_value(out, spec, value[spec["name"]])

    def _w_value(self, out: bytearray, spec: dict[str, Any], value: Any) -> None:
        wire = spec["wire"]
        if wire == "varuint":
            _w_varuint(out, value)
        elif wire in ("u8", "bool"):
            out.append(int(value))
        elif wire == "string":
            raw = value.encode("utf-8")
            _w_varuint(out, len(raw))
            out += raw
        elif wire == "bytes":
            raw = bytes.fromhex(value)
            _w_varuint(out, len(raw))
            out += raw
        elif wire == "list":
            _w_varuint(out, len(value))
            for item in value:
                self._w_value(out, spec["item"], item)
        elif wire == "struct":
            self._w_struct(out, spec["fields"], value)
        else:
            raise ContractError("malformed", f"unknown wire type {wire}")

    def decode(self, frame: bytes) -> dict[str, Any]:
        if len(frame) > self.c.bound("max_frame_bytes"):
            raise ContractError("too_large", "frame over max_frame_bytes")
        r = _Reader(bytes(frame))
        version = r.byte()
        if version != self.c.version:
            raise ContractError("unsupported_version", f"frame version {version}")
        spec = self.c.by_type.get(r.byte())
        if spec is None:
            raise ContractError("malformed", "unknown message type")
        fields = self._r_struct(r, spec["fields"])
        if spec["name"] == "HELLO" and fields["protocol_version"] != self.c.version:
            raise ContractError("unsupported_version", "hello of another protocol version")
        if r.pos != len(r.data):
            raise ContractError("malformed", "trailing bytes")
        return {"type": spec["name"], "fields": fields}

    def _r_struct(self, r: _Reader, specs: list[dict[str, Any]]) -> dict[str, Any]:
        return {spec["name"]: self._r_value(r, spec) for spec in specs}

    def _r_value(self, r: _Reader, spec: dict[str, Any]) -> Any:
        wire = spec["wire"]
        if wire == "varuint":
            return r.varuint()
        if wire == "bool":
            b = r.byte()
            if b > 1:
                raise ContractError("malformed", "bool must be 0 or 1")
            return b == 1
        if wire == "u8":
            b = r.byte()
            if "enum" in spec and b not in spec["enum"].values():
                raise ContractError("malformed", f"{spec['name']} {b} is not a known value")
            return b
        if wire == "string":
            n = r.varuint()
            if n > 4 * spec["max_chars"]:
                raise ContractError("too_large", f"{spec['name']} too long")
            try:
                text = r.take(n).decode("utf-8")
            except UnicodeDecodeError:
                raise ContractError("malformed", "invalid UTF-8") from None
            if len(text) > spec["max_chars"]:
                raise ContractError("too_large", f"{spec['name']} too long")
            if len(text) < spec["min_chars"]:
                raise ContractError("malformed", f"{spec['name']} is empty")
            if "\x00" in text:
                raise ContractError("malformed", f"{spec['name']} holds a NUL character")
            return text
        if wire == "bytes":
            n = r.varuint()
            if n > self.c.bound(spec["max_bytes"]):
                raise ContractError("too_large", f"{spec['name']} too long")
            raw = r.take(n)
            if n < spec["min_bytes"]:
                raise ContractError("malformed", f"{spec['name']} too short")
            return raw.hex()
        if wire == "list":
            n = r.varuint()
            if n > self.c.bound(spec["max_items"]):
                raise ContractError("too_large", f"{spec['name']}: too many items")
            return [self._r_value(r, spec["item"]) for _ in range(n)]
        if wire == "struct":
            return self._r_struct(r, spec["fields"])
        raise ContractError("malformed", f"unknown wire type {wire}")


# --- pairing --------------------------------------------------------------------------------


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_pairing(contract: Contract, text: str, now: float | None = None) -> dict[str, Any]:
    """Check a scanned payload as the contract says; returns its fields."""
    rules = contract.pairing["x-velocity"]
    if not text.startswith(rules["prefix"]):
        raise ContractError("bad_pairing_payload", "not a pairing payload")
    try:
        payload = json.loads(_unb64url(text[len(rules["prefix"]):]))
        public = _unb64url(payload["hub_key"])
        signature = _unb64url(payload["signature"])
    except (ValueError, KeyError, TypeError):
        raise ContractError("bad_pairing_payload", "damaged payload") from None
    if set(payload) != set(contract.pairing["required"]):
        raise ContractError("bad_pairing_payload", "unexpected fields")
    fp = rules["fingerprint"]
    digest = hashlib.new(fp["hash"], public).hexdigest()[: fp["hex_digits"]]
    if fp["prefix"] + digest != payload["fingerprint"]:
        raise ContractError("bad_pairing_signature", "key does not match its fingerprint")
    signed = rules["signing_context"].encode() + _canonical(
        {k: v for k, v in payload.items() if k != "signature"})
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, signed)
    except (InvalidSignature, ValueError):
        raise ContractError("bad_pairing_signature", "signature does not verify") from None
    if payload["expires_at"] <= (time.time() if now is None else now):
        raise ContractError("pairing_payload_expired", "expired")
    return dict(payload)


# --- records --------------------------------------------------------------------------------


class Record:
    """One record's Yjs document, laid out as its entity schema's ``x-velocity`` says."""

    def __init__(self, contract: Contract, guid: str, client_id: int) -> None:
        name = guid.split("/", 1)[0]
        self.schema = contract.entities[name]
        self.layout = self.schema["x-velocity"]["document"]
        self.guid = guid
        self.client_id = client_id
        self.confirmed: pycrdt.Doc[Any] = pycrdt.Doc()
        """What the hub holds, as far as this device knows: pulled items and acked pushes."""
        self._open(b"")

    def _open(self, state: bytes) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=self.client_id)
        self.registers: pycrdt.Map[Any] = self.doc.get(self.layout["registers_root"],
                                                       type=pycrdt.Map)
        if state:
            self.doc.apply_update(state)

    def apply(self, update: bytes) -> None:
        """A pulled item: the hub holds it."""
        self.doc.apply_update(update)
        self.confirmed.apply_update(update)

    def confirm(self, update: bytes) -> None:
        """One of this device's updates was acknowledged."""
        self.confirmed.apply_update(update)

    def rebuild(self, unsent: list[bytes]) -> None:
        """After a refusal: the confirmed state plus the changes still waiting for an answer
        (the refused one left out). A waiting change that built on the refused one stays
        held by Yjs and will be refused too: this client pushes one change at a time."""
        self._open(bytes(self.confirmed.get_update()))
        for update in unsent:
            self.doc.apply_update(update)

    def write(self, values: dict[str, Any]) -> bytes:
        """Set registers, replace texts and lists; returns the update to push."""
        before = self.doc.get_state()
        with self.doc.transaction():
            for name, value in values.items():
                kind = self.layout["fields"][name]
                if kind == "register":
                    self.registers[name] = value
                elif kind == "text":
                    text = self.doc.get(name, type=pycrdt.Text)
                    del text[0 : len(text)]
                    text += value
                elif kind == "set":
                    self._write_set(name, value)
                else:
                    raise ValueError(f"{name}: this client reads ordered lists, never edits them")
        return bytes(self.doc.get_update(before))

    def _list_root(self, name: str) -> pycrdt.Map[Any]:
        return self.doc.get(self.layout["list_roots"][name], type=pycrdt.Map)

    def _write_set(self, name: str, members: list[str]) -> None:
        """Delete the keys of members that go; add this replica's key for members that come."""
        root = self._list_root(name)
        held: dict[str, list[str]] = {}
        for key in list(root.keys()):
            held.setdefault(key.rpartition("/")[0], []).append(key)
        for member, keys in held.items():
            if member not in members:
                for key in keys:
                    del root[key]
        replica = _base62_lowest_first(self.doc.client_id)
        for member in members:
            if member not in held:
                root[f"{member}/{replica}"] = True

    def content(self) -> dict[str, Any]:
        """The record with the schema's defaults filled in, ``None`` values left out."""
        out: dict[str, Any] = {"id": self.guid.split("/", 1)[1]}
        raw = self.registers.to_py() or {}
        for name, kind in self.layout["fields"].items():
            if kind == "register" and name in raw:
                out[name] = raw[name]
            elif kind == "text":
                out[name] = str(self.doc.get(name, type=pycrdt.Text))
            elif kind == "set":
                out[name] = sorted({key.rpartition("/")[0] for key in self._list_root(name)})
            elif kind == "ordered":
                out[name] = _ordered_elements(self._list_root(name).to_py() or {})
            elif "default" in self.schema["properties"].get(name, {}):
                out[name] = self.schema["properties"][name]["default"]
        return {k: v for k, v in sorted(out.items()) if v is not None}


def _base62_lowest_first(number: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, digit = divmod(number, 62)
        out += digits[digit]
        if not number:
            return out


def _ordered_elements(entries: dict[str, Any]) -> list[dict[str, Any]]:
    """An ordered list's elements from its root Map's keys, as the contract lays them out."""
    positions: dict[str, str] = {}
    props: dict[str, dict[str, Any]] = {}
    removed = set()
    for key, value in entries.items():
        kind, _, rest = key.partition("/")
        element, _, prop = rest.partition("/")
        if kind == "pos":
            positions[element] = value
        elif kind == "val":
            props.setdefault(element, {})[prop] = value
        elif kind == "del":
            removed.add(element)
    live = sorted((e for e in positions if e not in removed), key=lambda e: (positions[e], e))
    return [{"id": e, **props.get(e, {})} for e in live]


# --- the device -----------------------------------------------------------------------------


@dataclass
class ReferenceDevice:
    """Pairs, bootstraps, pushes and pulls, keeping its replica in memory."""

    contract: Contract
    client_id: int
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    hub_url: str = ""
    device_id: str = ""
    cursor: int = 0
    records: dict[str, Record] = field(default_factory=dict)
    acks: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, dict[str, Any]] = field(default_factory=dict)
    welcome: dict[str, Any] = field(default_factory=dict)
    unanswered: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """update id → (guid, update) pushed and not yet answered (the outbox)."""
    _ws: Any = None
    _sent: int = 0

    @property
    def codec(self) -> FrameCodec:
        return FrameCodec(self.contract)

    async def pair(self, qr_text: str, name: str = "reference iPad") -> dict[str, Any]:
        """Verify the payload, make the hub prove it holds the signing key, redeem the code."""
        payload = verify_pairing(self.contract, qr_text)
        rules = self.contract.pairing["x-velocity"]
        redeem, identity = rules["redeem"], rules["identity"]
        public = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
        async with httpx.AsyncClient(base_url=payload["hub_url"], timeout=30) as http:
            nonce = secrets.token_bytes(32)
            r = await http.request(identity["method"], identity["path"],
                                   params={"nonce": nonce.hex()})
            try:
                answer = r.json()
                hub_key = _unb64url(answer["public_key"])
                Ed25519PublicKey.from_public_bytes(hub_key).verify(
                    _unb64url(answer["signature"]), identity["context"].encode() + nonce)
            except (ValueError, KeyError, TypeError, InvalidSignature):
                raise ContractError("hub_key_mismatch", "the hub did not prove its key") \
                    from None
            if hub_key != _unb64url(payload["hub_key"]):
                raise ContractError("hub_key_mismatch", "the hub holds another key than the "
                                    "one that signed the pairing code")
            r = await http.request(redeem["method"], redeem["path"], json={
                "code": payload["code"], "public_key": base64.b64encode(public).decode(),
                "name": name})
        if r.status_code != 200:
            raise ContractError("pairing_refused", r.text)
        answer = r.json()
        missing = set(redeem["response"]["required"]) - set(answer)
        if missing:
            raise ContractError("malformed", f"pairing answer lacks {sorted(missing)}")
        self.hub_url, self.device_id = payload["hub_url"], answer["device_id"]
        return dict(answer)

    def record(self, guid: str) -> Record:
        if guid not in self.records:
            self.records[guid] = Record(self.contract, guid, self.client_id)
        return self.records[guid]

    async def connect(self) -> None:
        """Handshake, then read until the bootstrap (or catch-up) batch says ``more = false``."""
        scheme, rest = self.hub_url.split("://", 1)
        url = ("wss" if scheme == "https" else "ws") + "://" + rest.rstrip("/") + \
            self.contract.frames["endpoint"]["path"]
        self._ws = await websockets.connect(url, max_size=self.contract.bound("max_frame_bytes"))
        await self._send("HELLO", {"protocol_version": self.contract.version,
                                   "device_id": self.device_id, "cursor": self.cursor,
                                   "client_ids": [self.client_id]})
        challenge = await self._expect("CHALLENGE")
        auth = self.contract.frames["auth"]
        signed = (auth["context"].encode() + bytes.fromhex(challenge["nonce"])
                  + self.device_id.encode())
        await self._send("AUTH", {"signature": self.key.sign(signed).hex()})
        self.welcome = await self._expect("WELCOME")
        await self.read_until(lambda m: m["type"] == "PULL_BATCH" and not m["fields"]["more"])

    async def _send(self, name: str, fields: dict[str, Any]) -> None:
        await self._ws.send(self.codec.encode(name, fields))

    async def _expect(self, name: str) -> dict[str, Any]:
        message = self.codec.decode(await self._ws.recv())
        if message["type"] == "ERROR":
            raise ContractError(message["fields"]["reason"], message["fields"]["message"])
        if message["type"] != name:
            raise ContractError("malformed", f"expected {name}, got {message['type']}")
        return dict(message["fields"])

    async def read_until(self, done: Callable[[dict[str, Any]], bool]) -> None:
        """Handle incoming frames until ``done(message)`` holds for one of them."""
        while True:
            message = self.codec.decode(await self._ws.recv())
            self._handle(message)
            if done(message):
                return

    def _handle(self, message: dict[str, Any]) -> None:
        fields = message["fields"]
        kinds = {v: k for k, v in self.contract.frames["item_kinds"].items()}
        if message["type"] == "PULL_BATCH":
            for item in fields["items"]:
                if kinds[item["kind"]] == "remove":
                    self.records.pop(item["guid"], None)
                else:
                    self.record(item["guid"]).apply(bytes.fromhex(item["data"]))
            self.cursor = fields["cursor"]
        elif message["type"] == "ACK":
            for entry in fields["entries"]:
                self.acks[entry["update_id"]] = entry["seq"]
                if entry["update_id"] in self.unanswered:
                    guid, update = self.unanswered.pop(entry["update_id"])
                    self.record(guid).confirm(update)
        elif message["type"] == "REFUSAL":
            self.refusals[fields["update_id"]] = fields
            refused = self.unanswered.pop(fields["update_id"], None)
            if refused is not None:
                guid = refused[0]
                self.record(guid).rebuild([u for g, u in self.unanswered.values() if g == guid])
        elif message["type"] == "ERROR":
            raise ContractError(fields["reason"], fields["message"])

    async def push(self, guid: str, values: dict[str, Any]) -> str:
        """Write locally and push; returns the update id (answered by ACK or REFUSAL)."""
        update = self.record(guid).write(values)
        self._sent += 1
        update_id = f"{self.device_id}:{self._sent}"
        self.unanswered[update_id] = (guid, update)
        await self._send("PUSH_BATCH", {"items": [
            {"update_id": update_id, "guid": guid, "data": update.hex()}]})
        return update_id

    async def answered(self, update_id: str) -> None:
        if update_id not in self.acks and update_id not in self.refusals:
            await self.read_until(lambda _: update_id in self.acks
                                  or update_id in self.refusals)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
