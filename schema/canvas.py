"""Component edits of a canvas page, as functions from its component list to the new list (pure:
the hub's REST API and the edge's local API both apply them to the document as it stands)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import Conflict, NotFound, RecordInvalid

Components = list[dict[str, Any]]


def add(components: Sequence[Mapping[str, Any]], component: Mapping[str, Any],
        after: str | None = None, *, first: bool = False) -> Components:
    """``component`` (with its id) placed after ``after``: at the end when None, first with
    ``first``."""
    out = [dict(c) for c in components]
    if any(c["id"] == component["id"] for c in out):
        raise Conflict(f"component {component['id']} already exists on this page")
    out.insert(_position(out, after, first), dict(component))
    return out


def update(components: Sequence[Mapping[str, Any]], component_id: str,
           values: Mapping[str, Any]) -> Components:
    """The component's given keys set; its id never changes."""
    if values.get("id", component_id) != component_id:
        raise RecordInvalid("a component's id cannot change", problems=["id: fixed"])
    _require(components, component_id)
    return [{**c, **values} if c["id"] == component_id else dict(c) for c in components]


def remove(components: Sequence[Mapping[str, Any]], component_id: str) -> Components:
    _require(components, component_id)
    return [dict(c) for c in components if c["id"] != component_id]


def move(components: Sequence[Mapping[str, Any]], component_id: str, after: str | None,
         *, first: bool = False) -> Components:
    """The component moved after ``after``: to the end when None, first with ``first``."""
    if after == component_id:
        raise RecordInvalid("a component cannot follow itself", problems=["after: itself"])
    _require(components, component_id)
    out = [dict(c) for c in components]
    moving = next(c for c in out if c["id"] == component_id)
    out.remove(moving)
    out.insert(_position(out, after, first), moving)
    return out


def _require(components: Sequence[Mapping[str, Any]], component_id: str) -> None:
    if not any(c["id"] == component_id for c in components):
        raise NotFound(f"no component {component_id} on this page")


def _position(components: Sequence[Mapping[str, Any]], after: str | None, first: bool) -> int:
    if first:
        return 0
    if after is None:
        return len(components)
    ids = [c["id"] for c in components]
    if after not in ids:
        raise NotFound(f"no component {after} on this page to place after")
    return ids.index(after) + 1
