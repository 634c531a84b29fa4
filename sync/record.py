"""The record engine: one pycrdt document per record, local changes as updates, safe apply."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pycrdt as Y

from core.errors import (
    FrameTooLarge,
    MalformedFrame,
    PendingUpdates,
    RecordInvalid,
    StorageError,
)
from core.ids import make_guid
from core.settings import SyncLimits
from schema import FIELDS_ROOT, Collection, CrdtKind, project
from schema.crdt import list_root
from schema.models import Record
from sync._lib0 import Lib0Reader
from sync.lists import (
    DELETE,
    OrderedList,
    Writes,
    legacy_elements,
    set_diff,
    set_members,
)
from sync.pending import is_ready
from sync.position import salt_of
from sync.ycheck import RootKind
from sync.yupdate import DecodedUpdate, decode_update, trusted_state_vector

DEFAULT_MAX_UPDATE_BYTES = 1024 * 1024


class RecordDoc:
    """A record as a Y.Doc: registers in the root Map "fields", each text a root Text, each set
    or ordered list a root Map (sync/lists.py); lists of the former layout, root Arrays, are
    still read and are moved to the new layout by the first write of their field."""

    def __init__(
        self,
        coll: Collection,
        record_id: str,
        *,
        client_id: int | None = None,
        state: bytes | None = None,
    ) -> None:
        self.collection = coll
        self.record_id = record_id
        self.guid = make_guid(coll.name, record_id)
        self._held: list[tuple[bytes, DecodedUpdate]] = []
        self._content: dict[str, Any] | None = None  # cache; dropped on every change
        self._reset(client_id, state)

    def _reset(self, client_id: int | None, state: bytes | None) -> None:
        """A fresh Y.Doc, loaded from ``state`` (our own snapshot: self-contained)."""
        self._doc: Y.Doc[Any] = Y.Doc(client_id=client_id)
        self._fields: Y.Map[Any] = self._doc.get(FIELDS_ROOT, type=Y.Map)
        self._texts: dict[str, Y.Text] = {}  # text and list roots are made when first used
        self._lists: dict[str, Y.Map[Any]] = {}
        self._retired: dict[str, Y.Array[Any]] = {}
        self._content = None
        self._pristine = not state  # nothing ever written or applied: known to be empty
        if state:
            _call_crdt(self._doc.apply_update, state)

    def _text(self, name: str) -> Y.Text:
        if name not in self._texts:
            self._texts[name] = self._doc.get(name, type=Y.Text)
        return self._texts[name]

    def _list(self, name: str) -> Y.Map[Any]:
        if name not in self._lists:
            root = list_root(name, self.collection.kinds[name])
            self._lists[name] = self._doc.get(root, type=Y.Map)
        return self._lists[name]

    def _retired_list(self, name: str) -> Y.Array[Any]:
        """The field's root Array of the former layout (empty in documents written since)."""
        if name not in self._retired:
            self._retired[name] = self._doc.get(name, type=Y.Array)
        return self._retired[name]

    def _list_state(self, name: str) -> tuple[dict[str, Any], list[Any]]:
        """A list field's root Map entries and its former-layout values."""
        return _entries(self._list(name)), self._retired_list(name).to_py() or []

    @property
    def client_id(self) -> int:
        return int(self._doc.client_id)

    # --- reading ----------------------------------------------------------------------------

    def content(self) -> dict[str, Any]:
        """Registers, texts and lists by field name, as plain Python values (a fresh dict)."""
        return {k: copy.deepcopy(v) if isinstance(v, list | dict) else v
                for k, v in self._read().items()}

    def _read(self) -> Mapping[str, Any]:
        """The cached content itself: for readers here that never change it (validation
        builds new values), so no copy is made."""
        if self._content is None:
            coll = self.collection
            if self._pristine:
                out: dict[str, Any] = {n: "" for n in coll.texts} | {n: [] for n in coll.lists}
            else:
                with self._doc.transaction():
                    out = _entries(self._fields)
                    for name in coll.texts:
                        out[name] = str(self._text(name))
                    for name in coll.lists:
                        out[name] = _list_value(coll.kinds[name], *self._list_state(name))
            self._content = out
        return self._content

    def project(self) -> Record:
        """The validated record; raises `RecordInvalid` when the document does not validate."""
        return project(self.collection, self.record_id, self._read())

    @property
    def is_empty(self) -> bool:
        return self._pristine or self._doc.get_state() == _EMPTY_STATE

    def state_vector(self) -> bytes:
        return bytes(self._doc.get_state())

    def encode_state(self) -> bytes:
        """The whole document as one update (a snapshot)."""
        return bytes(self._doc.get_update())

    def diff(self, state_vector: bytes) -> bytes:
        """What a replica with ``state_vector`` lacks."""
        return bytes(_call_crdt(self._doc.get_update, state_vector))

    # --- local changes ----------------------------------------------------------------------

    @contextmanager
    def _change(self) -> Iterator[tuple[Any, list[bytes]]]:
        """One local transaction; yields (its native transaction, [the update, once done]).

        The update is the transaction's own (pycrdt's transaction event): its new items and
        only the deletions it made, not the document's whole delete set, so its size and the
        cost of checking it do not grow with the record's history."""
        made: list[bytes] = []
        subscription = self._doc.observe(lambda event: made.append(bytes(event.update)))
        self._pristine = False
        try:
            with self._doc.transaction() as txn:
                yield txn._txn, made
        finally:
            self._doc.unobserve(subscription)
            self._content = None
        if not made:  # nothing changed: no event
            made.append(EMPTY_UPDATE)

    def write(self, values: Mapping[str, Any]) -> bytes:
        """Apply one local change and return its update.

        Registers are set, texts are edited by their minimal differing span (so concurrent edits
        elsewhere in the text survive), sets and ordered lists get the fewest adds, removals,
        moves and property edits that turn them into the given value (sync/lists.py). The merged
        record is validated and every list change worked out first, so an invalid change never
        touches the document.
        """
        unknown = values.keys() - self.collection.kinds.keys()
        if unknown:
            raise RecordInvalid(f"{self.collection.name} has no field(s) {sorted(unknown)}")
        current = self._read()
        project(self.collection, self.record_id, {**current, **values})
        kinds = self.collection.kinds
        lists: dict[str, tuple[Writes, bool]] = {}
        for name, value in values.items():
            if kinds[name] in (CrdtKind.SET, CrdtKind.ORDERED) and current[name] != value:
                entries, former = self._list_state(name)
                lists[name] = (_list_writes(kinds[name], entries, list(value or []),
                                            self._salt), bool(former))
        with self._change() as (txn, update):
            _call_crdt(self._write_values, txn, values, current, lists)
        return update[0]

    def _write_values(self, txn: Any, values: Mapping[str, Any], current: Mapping[str, Any],
                      lists: Mapping[str, tuple[Writes, bool]]) -> None:
        kinds = self.collection.kinds
        registers = self._fields.integrated
        for name, value in values.items():
            kind = kinds[name]
            if kind is CrdtKind.REGISTER:
                if name not in current or current[name] != value:
                    # pycrdt's native map, straight: a validated register value is never a
                    # shared type or a sub-document, the checks `Map[...] =` repeats per key
                    registers.insert(txn, name, value)
            elif kind is CrdtKind.TEXT:
                _edit_text(self._text(name), str(value or ""))
        for name, (writes, retired) in lists.items():
            self._write_list(name, writes, retired)

    # --- ordered list elements (the minimal change; validated like `write`) -------------------

    def insert_element(self, name: str, index: int, element: Mapping[str, Any]) -> bytes:
        """Insert a new element (a map with a string ``id``) so that it ends at ``index``."""
        salt = self._salt
        return self._edit_elements(name, lambda view: view.insert(index, element, salt))

    def move_element(self, name: str, element_id: str, index: int) -> bytes:
        """Move an element so that it ends at ``index``; a concurrent edit of it survives."""
        salt = self._salt
        return self._edit_elements(name, lambda view: view.move(element_id, index, salt))

    def update_element(self, name: str, element_id: str, changes: Mapping[str, Any]) -> bytes:
        """Set some properties of an element; a concurrent move of it survives."""
        return self._edit_elements(name, lambda view: view.update(element_id, changes))

    def remove_element(self, name: str, element_id: str) -> bytes:
        """Remove an element; it stays removed whatever concurrent edits or moves it gets."""
        salt = self._salt
        return self._edit_elements(name, lambda view: view.remove(element_id, salt))

    def _edit_elements(self, name: str, edit: Callable[[OrderedList], Writes]) -> bytes:
        if self.collection.kinds.get(name) is not CrdtKind.ORDERED:
            raise RecordInvalid(f"{self.collection.name}.{name} is not an ordered list")
        entries, retired = self._list_state(name)
        writes: Writes = {}
        if retired:  # the former layout's elements move into the new one first
            writes = OrderedList(entries).diff(
                _list_value(CrdtKind.ORDERED, entries, retired), self._salt)
        writes = _then(entries, writes, edit(OrderedList(_after(entries, writes))))
        value = OrderedList(_after(entries, writes)).elements()
        project(self.collection, self.record_id, {**self._read(), name: value})
        with self._change() as (_, update):
            _call_crdt(self._write_list, name, writes, bool(retired))
        return update[0]

    def _write_list(self, name: str, writes: Writes, retired: bool) -> None:
        root = self._list(name)
        for key, value in writes.items():
            if value is DELETE:
                del root[key]
            else:
                root[key] = value
        if retired:
            array = self._retired_list(name)
            del array[0 : len(array)]

    @property
    def _salt(self) -> str:
        """What this replica's list positions end in (`sync.position`)."""
        return salt_of(self.client_id)

    def edit_text(self, name: str, index: int, delete: int = 0, insert: str = "") -> bytes:
        """Low-level text edit at a UTF-8 byte offset (what a text cursor in an editor sends)."""
        text = self._text(name)
        with self._change() as (_, update):
            if delete:
                del text[index : index + delete]
            if insert:
                text.insert(index, insert)
        return update[0]

    def delete(self) -> bytes:
        """Delete as a tombstone: the record stays a document (so late edits still merge)."""
        return self.write({"deleted": True})

    # --- remote updates ---------------------------------------------------------------------

    def apply(self, update: bytes, *, max_bytes: int = DEFAULT_MAX_UPDATE_BYTES,
              in_order: bool = False) -> None:
        """Apply an update from a trusted replica, in causal order.

        ``in_order``: the caller receives updates in an order that respects causality (the
        hub's log, read in sequence); they go straight to pycrdt and a native check confirms
        nothing was held back, falling back to the decoding path below when something was.

        The update is decoded first (a malformed one is a `ProtocolError`); one whose
        predecessors have not arrived is held here, not given to pycrdt, and applied as soon as
        they do. Library panics become `StorageError`.
        """
        if len(update) > max_bytes:
            raise FrameTooLarge(f"update of {len(update)} bytes exceeds {max_bytes}")
        if in_order and not self._held and self._apply_in_order(update):
            return
        decoded = decode_update(update, TRUSTED_LIMITS, resolve=False)
        self._held.append((update, decoded))
        self._drain()

    def apply_verified(self, update: bytes, clients: Mapping[int, tuple[int, int]]) -> None:
        """Apply an update the strict checks (`sync.ycheck.inspect`) passed against exactly
        this document's clocks and origins (the hub's gate): natively, without the restore
        point `apply` keeps, which is a copy of the whole state. ``clients``: its clock range
        per client, as the checks decoded them. Raises `StorageError` when pycrdt still held
        part of it back; the document must not be used after that."""
        self._content = None
        self._pristine = False
        _call_crdt(self._doc.apply_update, update)
        have = trusted_state_vector(bytes(self._doc.get_state()))
        if any(have.get(client, 0) < end for client, (_, end) in clients.items()):
            raise StorageError("a verified update was not integrated whole")

    def apply_log(self, updates: Sequence[bytes]) -> None:
        """Apply a run of updates from a log that holds every one after its predecessors (the
        hub's, read in sequence): natively, with no restore point per update; raises
        `StorageError` when pycrdt held part of them back (the log does not continue this
        document), after which the document must not be used. Each update's clock ranges come
        from its header walk (`decode_update` without resolving): ``Y.get_state`` of an update
        that does not start at clock 0 is empty, so it could not tell."""
        if not updates:
            return
        self._content = None
        self._pristine = False
        needed: dict[int, int] = {}
        for update in updates:
            for client, (_, end) in decode_update(update, TRUSTED_LIMITS,
                                                  resolve=False).clients.items():
                needed[client] = max(needed.get(client, 0), end)
            _call_crdt(self._doc.apply_update, update)
        have = trusted_state_vector(bytes(self._doc.get_state()))
        if any(have.get(client, 0) < end for client, end in needed.items()):
            raise StorageError("the log's updates do not continue this document")

    def _apply_in_order(self, update: bytes) -> bool:
        """The fast path for an update of one client (a device's or the hub's change) or a
        merge of several (the hub sends one per document it has several updates of): a
        one-client update's first clock must continue the document's (read from the header;
        pycrdt would show a gap at once), then it is applied natively and a native check
        confirms every struct was integrated (the document's state vector covers the
        update's), since pycrdt holds structs with missing origins silently. Otherwise the
        document is restored and False is returned (or the error raised), and the caller
        takes the decoding path."""
        start = _first_client_start(update)
        if start is None:
            return False
        pristine = self._pristine
        if start != _SEVERAL_CLIENTS:
            client, first_clock = start
            held = ({} if pristine
                    else trusted_state_vector(bytes(self._doc.get_state())))
            if first_clock > held.get(client, 0):
                return False  # a gap in that client's clocks: pycrdt would show it at once
        before = None if pristine else bytes(self._doc.get_update())
        needed_sv = bytes(_call_crdt(Y.get_state, update))
        self._content = None
        self._pristine = False
        try:
            _call_crdt(self._doc.apply_update, update)
        except StorageError:
            self._reset(self.client_id, before)
            raise
        have_sv = bytes(self._doc.get_state())
        if have_sv == needed_sv:  # the common case on a new document: exactly what came
            return True
        have = trusted_state_vector(have_sv)
        needed = trusted_state_vector(needed_sv)
        if all(have.get(client, 0) >= end for client, end in needed.items()):
            return True
        self._reset(self.client_id, before)
        return False

    def _drain(self) -> None:
        progress = True
        while progress and self._held:
            progress = False
            held = trusted_state_vector(bytes(self._doc.get_state()))
            for entry in list(self._held):
                if is_ready(entry[1], held):
                    self._held.remove(entry)
                    self._content = None
                    self._pristine = False
                    _call_crdt(self._doc.apply_update, entry[0])
                    progress = True
                    break

    def apply_checked(
        self, update: bytes, *, max_bytes: int = DEFAULT_MAX_UPDATE_BYTES
    ) -> Record:
        """Apply to a scratch copy first; only a change that projects to a valid record lands.

        Returns the new record. On any failure the document is untouched.
        """
        scratch = RecordDoc(self.collection, self.record_id, state=self.encode_state())
        scratch.apply(update, max_bytes=max_bytes)
        record = scratch.project()
        self.apply(update, max_bytes=max_bytes)
        return record

    def missing_from(self, state_vector: bytes) -> bool:
        """True when a replica at ``state_vector`` lacks something this document has."""
        return self.diff(state_vector) != EMPTY_UPDATE

    def compact(self) -> bytes:
        """A snapshot for the log's compaction; refused while any update is held pending."""
        if self.has_pending():
            raise PendingUpdates(f"{self.guid} holds pending updates; compaction refused")
        return self.encode_state()

    def has_pending(self) -> bool:
        """True when applied updates wait for predecessors that have not arrived."""
        return bool(self._held)


def _entries(root: Y.Map[Any]) -> dict[str, Any]:
    """A root Map as Python values, through pycrdt's native JSON (about 4× faster than
    `to_py`, which opens a transaction per key). Numbers come back as JSON has them (``5``
    for ``5.0``); the models coerce them, and ``5 == 5.0``."""
    text = str(root)
    if "null" in text:  # pycrdt's JSON writes NaN and ±inf as null: the slow, exact path
        return dict(root.to_py() or {})
    try:
        value = json.loads(text)
    except ValueError:  # not JSON: the slow, exact path
        value = root.to_py()
    return dict(value or {})


def _list_value(kind: CrdtKind, entries: Mapping[str, Any], retired: list[Any]) -> list[Any]:
    """A set (sorted) or ordered list's value; elements still in the former layout's Array
    count as if moved to the new one (an element the new layout knows, even removed, wins)."""
    if kind is CrdtKind.SET:
        return sorted(set_members(entries).keys() | {v for v in retired if isinstance(v, str)})
    view = OrderedList(entries)
    return view.elements() + [e for e in legacy_elements(retired) if not view.known(e["id"])]


def _list_writes(kind: CrdtKind, entries: Mapping[str, Any], target: list[Any], salt: str
                 ) -> Writes:
    """The writes that make the new layout hold ``target`` (what the former layout held and
    ``target`` keeps is written into the new layout with it)."""
    if kind is CrdtKind.SET:
        return set_diff(set_members(entries), target, salt)
    return OrderedList(entries).diff(target, salt)


def _after(entries: Mapping[str, Any], writes: Writes) -> dict[str, Any]:
    """A root Map's entries once ``writes`` are made."""
    out = {k: v for k, v in entries.items() if writes.get(k) is not DELETE}
    out.update({k: v for k, v in writes.items() if v is not DELETE})
    return out


def _then(entries: Mapping[str, Any], first: Writes, second: Writes) -> Writes:
    """``first`` then ``second`` as one set of writes on ``entries`` (a key ``first`` creates and
    ``second`` deletes is never written)."""
    out = dict(first)
    for key, value in second.items():
        if value is DELETE and key not in entries:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def root_kinds(coll: Collection) -> dict[str, RootKind]:
    """Every root a document of ``coll`` may hold and its kind, for the strict validator."""
    kinds = {name: _ROOT_KINDS[kind] for name, kind in coll.roots.items()}
    kinds.update({name: RootKind.RETIRED for name in coll.retired_roots})
    return kinds


_ROOT_KINDS = {CrdtKind.REGISTER: RootKind.MAP, CrdtKind.TEXT: RootKind.TEXT,
               CrdtKind.SET: RootKind.MAP, CrdtKind.ORDERED: RootKind.MAP}


_SEVERAL_CLIENTS = (-1, -1)
"""`_first_client_start` of an update with more than one client block."""


def _first_client_start(update: bytes) -> tuple[int, int] | None:
    """(client, first clock) from the header of an update with one client block,
    `_SEVERAL_CLIENTS` for more than one, None for none or an unreadable header."""
    reader = Lib0Reader(update)
    try:
        clients = reader.read_var_uint()
        if clients != 1:
            return _SEVERAL_CLIENTS if clients > 1 else None
        reader.read_var_uint()  # struct count
        return reader.read_var_uint(), reader.read_var_uint()
    except MalformedFrame:
        return None


def merge_updates(updates: Sequence[bytes]) -> bytes:
    """One update holding everything of ``updates`` (Yjs ``mergeUpdates``): applying it is
    applying them all. Library panics become `StorageError`."""
    return bytes(_call_crdt(Y.merge_updates, *updates))


TRUSTED_LIMITS = SyncLimits(
    max_update_bytes=1 << 30, max_structs_per_update=1 << 30, max_structs_per_key=1 << 30,
    max_clients_per_update=1 << 20, max_string_bytes=1 << 30,
)
"""Bounds for decoding what our own replicas produced (snapshots, the hub's log): size and
count limits are for untrusted input; the format checks still apply."""
EMPTY_UPDATE = b"\x00\x00"
"""What a change that changes nothing encodes to: no struct, no delete."""
_EMPTY_STATE = b"\x00"


def _call_crdt(fn: Any, *args: Any) -> Any:
    """Call into pycrdt, turning its exceptions and panics (BaseException) into our errors."""
    try:
        return fn(*args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # pyo3 PanicException derives from BaseException
        raise StorageError(f"CRDT library refused the update: {type(exc).__name__}") from exc


def _edit_text(text: Y.Text, new: str) -> None:
    old = str(text)
    if old == new:
        return
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    byte_start = len(old[:start].encode())
    removed = len(old[start:end_old].encode())
    if removed:
        del text[byte_start : byte_start + removed]
    if end_new > start:
        text.insert(byte_start, new[start:end_new])

