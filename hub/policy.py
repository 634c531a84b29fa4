"""Write permissions: what a principal may change in a record (checked before anything commits).

Rules are checked on the record's content before and after the update (computed in the sandbox),
so they judge what an update really does, whatever it claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from core.errors import PermissionDenied
from core.identity import Principal, Role
from hub.scope import CANVAS, may_read
from schema import Collection
from schema.models import LeadStage


def check_write(
    principal: Principal, coll: Collection, before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
) -> None:
    """Raise `PermissionDenied` with a reason code when ``principal`` may not make this change."""
    if after.get("tenant_id") != principal.tenant_id:
        raise PermissionDenied("records belong to your own tenant only", code="other_tenant")
    if before is not None and before.get("tenant_id") not in (None, principal.tenant_id):
        raise PermissionDenied("a record's tenant cannot change", code="other_tenant")
    if coll.owner_scoped and not principal.is_manager:
        if before is not None and not may_read(
            principal, coll.name, before.get("owner_id"), before.get("team_id")
        ):
            raise PermissionDenied(f"this {coll.name[:-1]} belongs to another broker",
                                   code="not_owner")
        if before is None and after.get("owner_id") != principal.user_id:
            raise PermissionDenied(f"a new {coll.name[:-1]} must be owned by you",
                                   code="not_owner")
        if before is not None and after.get("owner_id") != before.get("owner_id"):
            raise PermissionDenied("only a SALES_DIRECTOR or ADMIN may reassign",
                                   code="reassign_forbidden")
    if coll.name == CANVAS:
        check_canvas_write(principal, before, after)
    if coll.name == "leads":
        check_lead_stage(principal, before, after)
    if not principal.is_manager:
        for name in coll.manager_only_fields:
            old = before.get(name) if before is not None else _default(coll, name)
            if after.get(name) != old:
                raise PermissionDenied(
                    f"only a SALES_DIRECTOR or ADMIN may set {coll.name}.{name}",
                    code="manager_only_field",
                )


def _default(coll: Collection, name: str) -> Any:
    default = coll.model.model_fields[name].default
    return getattr(default, "value", default)


# --- lead stages --------------------------------------------------------------------------------

LEAD_STAGES_BY_ROLE: Mapping[Role, frozenset[LeadStage]] = {
    Role.JUNIOR_BROKER: frozenset({LeadStage.NEW, LeadStage.CONTACTED, LeadStage.QUALIFIED,
                                   LeadStage.SITE_VISIT, LeadStage.LOST}),
    Role.SENIOR_BROKER: frozenset({LeadStage.NEW, LeadStage.CONTACTED, LeadStage.QUALIFIED,
                                   LeadStage.SITE_VISIT, LeadStage.NEGOTIATION, LeadStage.LOST}),
    Role.SALES_DIRECTOR: frozenset(LeadStage),
    Role.ADMIN: frozenset(LeadStage),
}
"""The stages each role may move a lead to; a won lead is reopened only by a role that may win."""


def check_lead_stage(principal: Principal, before: Mapping[str, Any] | None,
                     after: Mapping[str, Any]) -> None:
    """A lead's stage moves only to a stage the principal's role may set, and only away from
    one it may set (a won lead stays won for a broker)."""
    old = before.get("stage") if before is not None else LeadStage.NEW.value
    new = after.get("stage")
    if new == old:
        return
    allowed = {s.value for s in LEAD_STAGES_BY_ROLE[principal.role]}
    for stage in (old, new):
        if stage not in allowed:
            raise PermissionDenied(
                f"a {principal.role.value} may not move a lead "
                f"{'to' if stage == new else 'away from'} {stage}: ask a SALES_DIRECTOR",
                code="lead_stage_forbidden")


# --- Oracle canvas pages ------------------------------------------------------------------------

CANVAS_SHARING_FIELDS = ("owner_id", "team_id", "sharing", "editors", "viewers", "deleted")
"""Who may see or edit a page, and whether it exists: only its owner or an ADMIN changes them."""


class Access(IntEnum):
    """What a principal may do with a canvas page, each level including the ones below."""

    NONE = 0
    VIEW = 1
    EDIT = 2
    OWN = 3


def canvas_access(principal: Principal, page: Mapping[str, Any]) -> Access:
    """Owner and ADMIN own; named editors edit; named viewers, the sharing audience (team or
    tenant) and SALES_DIRECTORs view; everyone else has no access."""
    if page.get("tenant_id") != principal.tenant_id:
        return Access.NONE
    if principal.role is Role.ADMIN or page.get("owner_id") == principal.user_id:
        return Access.OWN
    if principal.user_id in (page.get("editors") or ()):
        return Access.EDIT
    sharing = page.get("sharing")
    if (principal.is_manager or principal.user_id in (page.get("viewers") or ())
            or sharing == "tenant"
            or (sharing == "team" and principal.team_id is not None
                and page.get("team_id") == principal.team_id)):
        return Access.VIEW
    return Access.NONE


def require_canvas(principal: Principal, page: Mapping[str, Any], needed: Access) -> None:
    """Raise `PermissionDenied` naming what is missing unless ``principal`` has ``needed``."""
    have = canvas_access(principal, page)
    if have >= needed:
        return
    if have is Access.NONE:
        raise PermissionDenied("this canvas page is not shared with you; ask its owner",
                               code="not_shared")
    if needed is Access.EDIT:
        raise PermissionDenied("you may only view this canvas page; ask its owner for edit "
                               "access", code="view_only")
    raise PermissionDenied("only the page's owner or an ADMIN may change its sharing or delete "
                           "it", code="owner_only")


def check_canvas_write(principal: Principal, before: Mapping[str, Any] | None,
                       after: Mapping[str, Any]) -> None:
    """A new page is owned by its author; an edit needs edit access; a change of sharing,
    owner or tombstone needs ownership."""
    if before is None:
        if after.get("owner_id") != principal.user_id and principal.role is not Role.ADMIN:
            raise PermissionDenied("a new canvas page must be owned by you", code="not_owner")
        return
    require_canvas(principal, before, Access.EDIT)
    if any(before.get(k) != after.get(k) for k in CANVAS_SHARING_FIELDS):
        require_canvas(principal, before, Access.OWN)
