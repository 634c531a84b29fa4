"""Oracle canvas pages: pages, components, revisions, forks and merge requests.

A page is one CRDT document (collection ``canvas_pages``); every change here is a write through
`LocalWriter`, so it enters the log like a device's and reaches every edge and Yjs client.
Revisions, forks and merge requests are the hub's own tables (``oracle_*``, in
`hub.storage.canvas`). Who may do what is
`hub.policy`'s canvas rules, checked here first (for a clear answer) and again by the writer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.errors import Conflict, NotFound, RecordInvalid
from core.identity import Principal
from core.ids import make_guid, new_id
from hub import canvas_merge
from hub.policy import CANVAS, Access, canvas_access, require_canvas
from schema import canvas, collection, to_row
from sync.record import RecordDoc

if TYPE_CHECKING:
    from hub.service import Hub

Row = dict[str, Any]
CONTENT_FIELDS = ("title", "narrative", "components")
"""What a revision restores; sharing and ownership are not content."""
EDITABLE_FIELDS = frozenset({"title", "narrative", "components", "sharing", "editors",
                             "viewers", "owner_id", "team_id"})


class Canvases:
    """The canvas service of one hub."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    # --- pages ----------------------------------------------------------------------------

    async def page(self, principal: Principal, page_id: str, needed: Access = Access.VIEW
                   ) -> Row:
        """The page as projected; a page the caller may not see is a 404, one they may see
        but not change as asked is a 403 naming what is missing."""
        page = await self._hub.storage.canvas.page(principal.tenant_id, page_id)
        if page is None or canvas_access(principal, page) is Access.NONE:
            raise NotFound(f"no canvas page {page_id}")
        require_canvas(principal, page, needed)
        return page

    async def pages(self, principal: Principal, limit: int, offset: int) -> list[Row]:
        """Pages the caller may see, newest first (components summarised by count)."""
        rows = await self._hub.storage.canvas.pages(principal.tenant_id)
        visible = [r for r in rows if canvas_access(principal, r) > Access.NONE]
        for page in visible:
            page["access"] = canvas_access(principal, page).name.lower()
        return visible[offset:offset + limit]

    async def create(self, principal: Principal, values: dict[str, Any],
                     page_id: str | None = None) -> Row:
        _only_editable(values)
        values = {"owner_id": principal.user_id, "team_id": principal.team_id, **values,
                  "created_at": datetime.now(UTC).isoformat(),
                  "tenant_id": principal.tenant_id}
        return await self._write(principal, page_id or new_id(), values, create=True)

    async def update(self, principal: Principal, page_id: str, values: dict[str, Any]) -> Row:
        _only_editable(values)
        await self.page(principal, page_id, Access.EDIT)
        return await self._write(principal, page_id, values)

    async def delete(self, principal: Principal, page_id: str) -> None:
        await self.page(principal, page_id, Access.OWN)
        await self._write(principal, page_id, {"deleted": True})

    async def _write(self, principal: Principal, page_id: str, values: Any,
                     *, create: bool = False) -> Row:
        committed = await self._hub.writer.write(principal, CANVAS, page_id, values,
                                                 create=create)
        assert committed.record is not None
        return committed.record.model_dump(mode="json")

    # --- components -----------------------------------------------------------------------

    async def add_component(self, principal: Principal, page_id: str, component: dict[str, Any],
                            after: str | None = None, *, first: bool = False) -> Row:
        """Add a component after ``after`` (at the end when None, at the start with
        ``first``); returns the page."""
        await self.page(principal, page_id, Access.EDIT)
        component = {**component, "id": component.get("id") or new_id()}
        return await self._edit_components(
            principal, page_id, lambda cs: canvas.add(cs, component, after, first=first))

    async def update_component(self, principal: Principal, page_id: str, component_id: str,
                               values: dict[str, Any]) -> Row:
        await self.page(principal, page_id, Access.EDIT)
        return await self._edit_components(
            principal, page_id, lambda cs: canvas.update(cs, component_id, values))

    async def delete_component(self, principal: Principal, page_id: str, component_id: str
                               ) -> Row:
        await self.page(principal, page_id, Access.EDIT)
        return await self._edit_components(
            principal, page_id, lambda cs: canvas.remove(cs, component_id))

    async def move_component(self, principal: Principal, page_id: str, component_id: str,
                             after: str | None, *, first: bool = False) -> Row:
        """Move a component after ``after`` (to the end when None, to the start with
        ``first``)."""
        await self.page(principal, page_id, Access.EDIT)
        return await self._edit_components(
            principal, page_id, lambda cs: canvas.move(cs, component_id, after, first=first))

    async def _edit_components(self, principal: Principal, page_id: str,
                               edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
                               ) -> Row:
        """One change of the component list, made on the page as it stands when written."""
        return await self._write(principal, page_id,
                                 lambda content: {"components": edit(content["components"])})

    # --- revisions and rollback -------------------------------------------------------------

    async def create_revision(self, principal: Principal, page_id: str, name: str) -> Row:
        """A named, immutable checkpoint of the page as it stands (any reader may make one)."""
        await self.page(principal, page_id)
        state, content = await self._current(principal, page_id)
        return await self._hub.storage.canvas.add_revision(
            principal.tenant_id, new_id(), page_id, name, content, state, principal.user_id)

    async def revisions(self, principal: Principal, page_id: str) -> list[Row]:
        await self.page(principal, page_id)
        return await self._hub.storage.canvas.revisions(principal.tenant_id, page_id)

    async def revision(self, principal: Principal, page_id: str, revision_id: str) -> Row:
        await self.page(principal, page_id)
        row = await self._hub.storage.canvas.revision(principal.tenant_id, page_id, revision_id)
        if row is None:
            raise NotFound(f"no revision {revision_id} of canvas page {page_id}")
        return row

    async def rollback(self, principal: Principal, page_id: str, revision_id: str) -> Row:
        """A new change that restores the revision's content; every revision and every
        change before it stays in the history."""
        await self.page(principal, page_id, Access.EDIT)
        content = (await self.revision(principal, page_id, revision_id))["content"]
        return await self._write(principal, page_id, {k: content[k] for k in CONTENT_FIELDS})

    async def _current(self, principal: Principal, page_id: str) -> tuple[bytes, Row]:
        """The page's merged state and its content, as stored together."""
        doc = await self._hub.store.document(principal.tenant_id, make_guid(CANVAS, page_id))
        if doc is None:
            raise NotFound(f"no canvas page {page_id}")
        record = RecordDoc(collection(CANVAS), page_id, state=doc.state).project()
        return doc.state, to_row(record)

    # --- stock Yjs clients ------------------------------------------------------------------

    async def bind_yjs_clients(self, tenant_id: str, device_id: str, client_ids: list[int]
                               ) -> set[int]:
        """Bind the Yjs client ids not bound yet to ``device_id`` (a user's Yjs clients);
        returns the ids bound to it (one bound to another device stays that device's)."""
        return await self._hub.storage.canvas.bind_client_ids(tenant_id, device_id, client_ids)

    # --- forks and merge requests -----------------------------------------------------------

    async def fork(self, principal: Principal, page_id: str, title: str | None = None) -> Row:
        """A new private page of the caller's with the page's current content; the fork point
        is remembered for merge requests."""
        parent = await self.page(principal, page_id)
        _, content = await self._current(principal, page_id)
        fork = await self.create(principal, {
            "title": title or parent["title"], "narrative": content["narrative"],
            "components": content["components"]})
        await self._hub.storage.canvas.add_fork(principal.tenant_id, fork["id"], page_id, fork,
                                                principal.user_id)
        return {**fork, "parent_id": page_id}

    async def forks(self, principal: Principal, page_id: str) -> list[Row]:
        """Forks of the page the caller may see."""
        await self.page(principal, page_id)
        rows = await self._hub.storage.canvas.forks(principal.tenant_id, page_id)
        return [{k: r[k] for k in ("fork_id", "parent_id", "created_by", "created_at", "title")}
                for r in rows if canvas_access(principal, dict(r)) > Access.NONE]

    async def fork_parent(self, principal: Principal, page_id: str) -> str | None:
        """The page this page was forked from (None: not a fork)."""
        await self.page(principal, page_id)
        return await self._hub.storage.canvas.fork_parent(principal.tenant_id, page_id)

    async def open_merge_request(self, principal: Principal, fork_id: str, title: str) -> Row:
        """Propose the fork's changes since its fork point to its parent."""
        await self.page(principal, fork_id, Access.EDIT)
        parent_id = await self._hub.storage.canvas.fork_parent(principal.tenant_id, fork_id)
        if parent_id is None:
            raise RecordInvalid(f"canvas page {fork_id} is not a fork",
                                problems=["fork_id: not a fork"])
        await self.page(principal, parent_id)
        mr_id = new_id()
        await self._hub.storage.canvas.add_merge_request(principal.tenant_id, mr_id, fork_id,
                                                         parent_id, title, principal.user_id)
        return await self.merge_request(principal, mr_id)

    async def merge_requests(self, principal: Principal, page_id: str | None,
                             status: str | None) -> list[Row]:
        """Merge requests whose parent page the caller may see."""
        rows = await self._hub.storage.canvas.merge_requests(principal.tenant_id, page_id,
                                                             status)
        return [_merge_request(r) for r in rows if canvas_access(principal, dict(r))]

    async def merge_request(self, principal: Principal, mr_id: str) -> Row:
        """The merge request with the readable diff of what it would change."""
        mr = await self._mr(principal, mr_id)
        change, _ = await self._fork_change(principal, mr["fork_id"])
        return {**mr, "diff": change.summary()}

    async def review(self, principal: Principal, mr_id: str, approve: bool,
                     comment: str = "") -> Row:
        """Approve: the fork's changes since its fork point are made on the parent as one
        change (merging with whatever the parent holds by the CRDT's rules); the fork point
        moves to what was merged. Reject: the parent is untouched."""
        mr = await self._mr(principal, mr_id)
        if mr["status"] != "open":
            raise Conflict(f"merge request {mr_id} is already {mr['status']}")
        await self.page(principal, mr["parent_id"], Access.EDIT)
        merged_seq = None
        if approve:
            change, fork_now = await self._fork_change(principal, mr["fork_id"])
            if not change.empty:
                committed = await self._hub.writer.write(
                    principal, CANVAS, mr["parent_id"],
                    lambda content: canvas_merge.apply(change, content), create=False)
                merged_seq = committed.seq
            await self._hub.storage.canvas.move_fork_point(principal.tenant_id, mr["fork_id"],
                                                           fork_now)
        await self._hub.storage.canvas.reviewed(
            principal.tenant_id, mr_id, "approved" if approve else "rejected", principal.user_id,
            comment, merged_seq)
        return await self._mr(principal, mr_id)

    async def _mr(self, principal: Principal, mr_id: str) -> Row:
        row = await self._hub.storage.canvas.merge_request(principal.tenant_id, mr_id)
        if row is None:
            raise NotFound(f"no merge request {mr_id}")
        await self.page(principal, row["parent_id"])
        return _merge_request(row)

    async def _fork_change(self, principal: Principal, fork_id: str
                           ) -> tuple[canvas_merge.PageDiff, Row]:
        point = await self._hub.storage.canvas.fork_point(principal.tenant_id, fork_id)
        if point is None:
            raise NotFound(f"no fork {fork_id}")
        _, now = await self._current(principal, fork_id)
        return canvas_merge.diff(point, now), now


def _merge_request(row: Any) -> Row:
    keys = ("mr_id", "fork_id", "parent_id", "title", "status", "created_by", "created_at",
            "reviewed_by", "reviewed_at", "review_comment", "merged_seq")
    return {k: row[k] for k in keys}


def _only_editable(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - EDITABLE_FIELDS)
    if unknown:
        raise RecordInvalid(f"canvas pages do not take {unknown} here",
                            problems=[f"{k}: not editable" for k in unknown])
