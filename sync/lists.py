"""List fields kept in root Maps, one key per fact, so that concurrent changes merge by identity.

An ordered list (root Map ``<field>.list``) holds elements that are maps with a stable ``id``:

    pos/<id>               the element's position (`sync.position`); sorted by (position, id)
    val/<id>/<prop>        one property of the element
    del/<id>/<replica>     true: the element was removed (by that replica)

A move writes only ``pos/<id>`` and an edit only ``val/<id>/<prop>``, so a move on one replica and
an edit on another both survive; each of these keys is a register with Yjs' map rule. An element
is live while it has a position and no tombstone. Each replica writes its own tombstone key, and
inserting a removed element again deletes only the tombstones its replica has seen, so a removal
wins over a concurrent move, edit or re-insertion.

A set (root Map ``<field>.set``) holds ``<member>/<replica>: true`` for each replica's add of a
member. A removal deletes the keys of the member its replica has seen; an add writes the key of
its own replica afresh; so an add wins over a concurrent removal of the same member (an
observed-remove set), and every other pair of changes both apply.

``<replica>`` is `sync.position.salt_of` the writer's client id. Every change is a `Writes`:
key → new value, or `DELETE`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from core.errors import RecordInvalid
from sync.position import between, is_position

ELEMENT_ID: Final = "id"
"""The property of an ordered list's element that is its identity."""


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()
"""A `Writes` value: remove the key."""

Writes = dict[str, Any]


class OrderedList:
    """An ordered list's root Map as read: positions, properties and tombstones by element id."""

    def __init__(self, entries: Mapping[str, Any]) -> None:
        """Parse the Map's entries; anything but the three key kinds is `RecordInvalid`."""
        self.positions: dict[str, str] = {}
        self.props: dict[str, dict[str, Any]] = {}
        self.tombstones: dict[str, list[str]] = {}
        for key, value in entries.items():
            kind, _, rest = key.partition("/")
            element, _, prop = rest.partition("/")
            if kind == "pos" and element and not prop and is_position(value):
                self.positions[element] = value
            elif kind == "del" and element and is_position(prop) and value is True:
                self.tombstones.setdefault(element, []).append(key)
            elif kind == "val" and element and prop:
                self.props.setdefault(element, {})[prop] = value
            else:
                raise RecordInvalid(f"ordered list entry {key!r} = {value!r} is not valid")
        self.removed = frozenset(self.tombstones)
        self.order = sorted((e for e in self.positions if e not in self.removed),
                            key=lambda e: (self.positions[e], e))
        """Live element ids, in list order."""
        self._live_ids = frozenset(self.order)

    def elements(self) -> list[dict[str, Any]]:
        """The list's value: each element as a map, its id first and its properties sorted."""
        return [{ELEMENT_ID: e, **dict(sorted(self.props.get(e, {}).items()))} for e in self.order]

    def known(self, element: str) -> bool:
        """The element was ever placed here (live or removed)."""
        return element in self.positions or element in self.removed

    # --- the minimal writes of one change ------------------------------------------------------

    def insert(self, index: int, element: Mapping[str, Any], salt: str) -> Writes:
        """Insert ``element`` (a new id, or one removed before) so that it ends at ``index``."""
        eid = element_id(element)
        if eid in self._live_ids:
            raise RecordInvalid(f"element {eid!r} is already in the list")
        writes = self._place(eid, index, self.order, salt)
        writes.update({key: DELETE for key in sorted(self.tombstones.get(eid, ()))})
        writes.update(self._prop_writes(eid, element))
        return writes

    def move(self, eid: str, index: int, salt: str) -> Writes:
        """Move a live element so that it ends at ``index``: only its position changes."""
        self._live(eid)
        return self._place(eid, index, [e for e in self.order if e != eid], salt)

    def update(self, eid: str, changes: Mapping[str, Any]) -> Writes:
        """Set some properties of a live element (the others keep their values)."""
        self._live(eid)
        if ELEMENT_ID in changes:
            raise RecordInvalid("an element's id cannot change")
        old = self.props.get(eid, {})
        return {f"val/{eid}/{p}": v for p, v in changes.items() if p not in old or old[p] != v}

    def remove(self, eid: str, salt: str) -> Writes:
        """Remove a live element: its tombstone, and its position and properties let go."""
        self._live(eid)
        writes: Writes = {f"del/{eid}/{salt}": True, f"pos/{eid}": DELETE}
        writes.update({f"val/{eid}/{p}": DELETE for p in sorted(self.props.get(eid, {}))})
        return writes

    def diff(self, target: Sequence[Mapping[str, Any]], salt: str) -> Writes:
        """The writes that turn this list into ``target``, matching elements by id: removals,
        insertions, the fewest moves (the longest run already in order stays), property edits."""
        ids = [element_id(e) for e in target]
        if len(set(ids)) != len(ids):
            raise RecordInvalid("an ordered list holds each element id once")
        writes: Writes = {}
        for eid in sorted(self._live_ids - set(ids)):  # sorted: the same bytes every run
            writes.update(self.remove(eid, salt))
        kept = _longest_rising([e for e in ids if e in self._live_ids], self.positions)
        rights: list[str | None] = []  # the position of the next element that stays, by index
        right: str | None = None
        for eid in reversed(ids):
            rights.append(right)
            right = self.positions[eid] if eid in kept else right
        left: str | None = None
        for eid, element, right in zip(ids, target, reversed(rights), strict=True):
            if eid in kept:
                left = self.positions[eid]
            else:
                left = writes[f"pos/{eid}"] = between(left, right, salt)
                writes.update({key: DELETE for key in sorted(self.tombstones.get(eid, ()))})
            writes.update(self._prop_writes(eid, element))
        return writes

    def _place(self, eid: str, index: int, others: list[str], salt: str) -> Writes:
        if not 0 <= index <= len(others):
            raise RecordInvalid(f"index {index} is outside the list (0..{len(others)})")
        left = self.positions[others[index - 1]] if index else None
        right = self.positions[others[index]] if index < len(others) else None
        if left is not None and right is not None and not left < right:
            # two neighbours tie (only crafted positions can): place everything anew
            target = [{ELEMENT_ID: e} for e in others]
            target.insert(index, {ELEMENT_ID: eid})
            return {k: v for k, v in self.diff(target, salt).items() if k.startswith("pos/")}
        return {f"pos/{eid}": between(left, right, salt)}

    def _prop_writes(self, eid: str, element: Mapping[str, Any]) -> Writes:
        old = self.props.get(eid, {})
        new = {p: v for p, v in element.items() if p != ELEMENT_ID}
        writes: Writes = {f"val/{eid}/{p}": DELETE for p in sorted(old.keys() - new.keys())}
        writes.update({f"val/{eid}/{p}": v for p, v in new.items() if p not in old or old[p] != v})
        return writes

    def _live(self, eid: str) -> None:
        if eid not in self._live_ids:
            raise RecordInvalid(f"element {eid!r} is not in the list")


def element_id(element: object) -> str:
    """An element's id: a non-empty string without ``/``; anything else is `RecordInvalid`."""
    eid = element.get(ELEMENT_ID) if isinstance(element, Mapping) else None
    if not isinstance(eid, str) or not eid or "/" in eid:
        raise RecordInvalid(f"each element of an ordered list needs a string {ELEMENT_ID!r} "
                            f"without '/', got {element!r}")
    return eid


def legacy_elements(values: Iterable[Any]) -> list[dict[str, Any]]:
    """An ordered list as the old layout stored it (a whole Array): the same elements, each with
    an id (``legacy-<index>`` when it had none), the first of any repeated id kept."""
    out: dict[str, dict[str, Any]] = {}
    for n, value in enumerate(values):
        if not isinstance(value, Mapping):
            continue
        eid = value.get(ELEMENT_ID)
        if not isinstance(eid, str) or not eid or "/" in eid:
            eid = f"legacy-{n}"
        out.setdefault(eid, {**value, ELEMENT_ID: eid})
    return list(out.values())


def set_members(entries: Mapping[str, Any]) -> dict[str, list[str]]:
    """A set's root Map as read: member → its keys; an entry other than
    ``<member>/<replica>: true`` is `RecordInvalid`."""
    members: dict[str, list[str]] = {}
    for key, value in entries.items():
        member, _, replica = key.rpartition("/")
        if value is not True or not is_position(replica):
            raise RecordInvalid(f"set entry {key!r} = {value!r} is not valid")
        members.setdefault(member, []).append(key)
    return members


def set_diff(members: Mapping[str, list[str]], target: Iterable[Any], salt: str) -> Writes:
    """The writes that turn ``members`` into ``target``: adds of the new, removals of the gone."""
    wanted = set()
    for value in target:
        if not isinstance(value, str):
            raise RecordInvalid(f"set members are strings, got {value!r}")
        wanted.add(value)
    writes: Writes = {key: DELETE for m in sorted(members.keys() - wanted)
                      for key in sorted(members[m])}
    writes.update({f"{m}/{salt}": True for m in sorted(wanted - members.keys())})
    return writes


def _longest_rising(ids: list[str], positions: Mapping[str, str]) -> set[str]:
    """The longest subsequence of ``ids`` whose positions strictly rise (patience sorting)."""
    tails: list[str] = []  # tails[k]: the smallest end position of a rising run of length k+1
    tail_ids: list[int] = []
    back: list[int] = []
    for n, eid in enumerate(ids):
        k = bisect_left(tails, positions[eid])
        back.append(tail_ids[k - 1] if k else -1)
        if k == len(tails):
            tails.append(positions[eid])
            tail_ids.append(n)
        else:
            tails[k], tail_ids[k] = positions[eid], n
    kept = set()
    n = tail_ids[-1] if tail_ids else -1
    while n >= 0:
        kept.add(ids[n])
        n = back[n]
    return kept
