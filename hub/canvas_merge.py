"""What a fork changed since its fork point, as a readable diff, and that change made again
on the parent page (pure: content dicts in, content dicts out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Content = Mapping[str, Any]
PAGE_FIELDS = ("title", "narrative")
"""Page fields a merge carries; sharing and ownership stay the parent's own."""


@dataclass(frozen=True)
class PageDiff:
    """A fork's change since its fork point."""

    page: dict[str, Any] = field(default_factory=dict)
    """Page fields the fork changed, with the fork's values."""
    added: list[dict[str, Any]] = field(default_factory=list)
    """New components, each with ``after``: the id it follows on the fork (None: first)."""
    removed: list[str] = field(default_factory=list)
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Component id → the keys the fork changed, with the fork's values."""
    moved: dict[str, str | None] = field(default_factory=dict)
    """Component id → the id it follows on the fork (None: first)."""
    order: list[str] = field(default_factory=list)
    """The fork's component order: added and moved components are placed in it."""

    @property
    def empty(self) -> bool:
        return not (self.page or self.added or self.removed or self.changed or self.moved)

    def summary(self) -> dict[str, Any]:
        """What a reviewer reads: page fields changed, components added, removed, moved and
        changed (which keys)."""
        return {
            "page_fields_changed": sorted(self.page),
            "components_added": [{"id": c["id"], "type": c.get("type"),
                                  "title": c.get("title", "")} for c in self.added],
            "components_removed": list(self.removed),
            "components_changed": [{"id": cid, "keys": sorted(keys)}
                                   for cid, keys in self.changed.items()],
            "components_moved": sorted(self.moved),
        }


def diff(base: Content, fork: Content) -> PageDiff:
    """What ``fork`` changed relative to ``base`` (its content at the fork point)."""
    old = {c["id"]: c for c in base.get("components", [])}
    new_order = [c["id"] for c in fork.get("components", [])]
    new = {c["id"]: c for c in fork.get("components", [])}
    out = PageDiff(page={k: fork.get(k) for k in PAGE_FIELDS if fork.get(k) != base.get(k)},
                   order=new_order)
    for i, cid in enumerate(new_order):
        if cid not in old:
            out.added.append({**new[cid], "after": new_order[i - 1] if i else None})
    out.removed.extend(cid for cid in old if cid not in new)
    for cid, comp in new.items():
        if cid in old:
            keys = {k: v for k, v in comp.items() if old[cid].get(k) != v}
            if keys:
                out.changed[cid] = keys
    kept_old = [cid for cid in old if cid in new]
    kept_new = [cid for cid in new_order if cid in old]
    stay = set(_longest_common_subsequence(kept_old, kept_new))
    for cid in kept_new:
        if cid not in stay:
            i = new_order.index(cid)
            out.moved[cid] = new_order[i - 1] if i else None
    return out


def apply(diff_: PageDiff, current: Content) -> dict[str, Any]:
    """The values that make ``diff_`` again on a page whose content is now ``current``.

    Rules where the parent moved on too: a component the parent removed stays removed (its
    edits and moves are dropped); a component is placed after the component it follows on the
    fork, or first when that one is absent; keys the fork changed take the fork's values; keys
    it did not touch keep the parent's; components are placed in the fork's order."""
    components = [dict(c) for c in current.get("components", [])]
    removed = set(diff_.removed)
    components = [c for c in components if c["id"] not in removed]
    by_id = {c["id"]: c for c in components}
    for cid, keys in diff_.changed.items():
        if cid in by_id:
            by_id[cid].update(keys)
    added = {c["id"]: c for c in diff_.added}
    for cid in diff_.order:  # in the fork's order, so a component's predecessor is placed
        if cid in diff_.moved and cid in by_id:
            components.remove(by_id[cid])
            _insert_after(components, by_id[cid], diff_.moved[cid])
        elif cid in added and cid not in by_id:
            comp = by_id[cid] = {k: v for k, v in added[cid].items() if k != "after"}
            _insert_after(components, comp, added[cid]["after"])
    return {**diff_.page, "components": components}


def _insert_after(components: list[dict[str, Any]], comp: dict[str, Any], after: str | None
                  ) -> None:
    ids = [c["id"] for c in components]
    components.insert(ids.index(after) + 1 if after in ids else 0, comp)


def _longest_common_subsequence(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """The longest run of ids in the same relative order in both (the components not moved)."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = (table[i + 1][j + 1] + 1 if a[i] == b[j]
                           else max(table[i + 1][j], table[i][j + 1]))
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out
