"""Who may read and change what: the one rule set of the hub, for REST, sync and every other door.

Writes are judged on the record's content before and after the change (for sync, computed in the
sandbox), so the verdict depends on what a change really does, never on the route it came by:
the same change gets the same verdict over REST and over sync. Reads use `may_read` (rendered as
SQL by `hub.scope`).

The rules, for a principal who is not a manager (ADMIN, SALES_DIRECTOR: everything in their
tenant):

- records belong to the principal's tenant, and a record's tenant never changes;
- clients, leads and opportunities (`GUARDED`) are changed only by their owner, by the senior
  broker of their team, or — for a client nobody owns yet — by any broker; this covers deleting
  and restoring them;
- a new guarded record is owned by its author (a client may also be created unowned), in the
  author's team (or none);
- owner and team of a guarded record change only by a manager (reassignment);
- manager-only fields (an opportunity's stage, value and probability; a unit's price) are set only
  by managers;
- a consent is revoked (or deleted) only by whoever recorded it, the senior of their team, or a
  manager; a client's perception results are purged only by whoever may change the client;
- a consent or perception result names only a client and a lead the principal may read, and
  one that names a client is revoked or purged only by whoever may purge that client's results
  (`check_names`: it needs the named records, so the hub's commit looks them up);
- Oracle canvas pages follow their sharing (`check_canvas_write`, for managers too);
- inventory (projects, towers, units, media) is changed only by managers;
- a unit is held by one broker at a time (`check_hold`, for managers too): a second claim on a
  held unit is refused with the holder's name, whichever device committed first.

- conversations are guarded like clients; a message is written queued and outbound by its author
  into a conversation scope they own, and never edited after: its delivery is reported only by
  the hub's comms agent (`check_message_write`, for managers too);
- a broker's mobile records (`IN_SCOPE`: communication events, transcripts, memory facts,
  calendar events, insights) are created and changed only within the principal's own scope: their
  own, or (seniors) their team's; owner and team change only by a manager;
- an insight is decided once: its decision is never changed afterwards (managers included);
- GPU requests are asked by their owner and answered by the hub (`check_gpu_request`, for
  managers too);
- accounts are managed by admins (all of their tenant's) and directors (brokers and
  themselves), roles granted only below one's own (`check_manage_user`, `check_grant_role`),
  and nobody changes their own role or disables themselves (`check_own_account`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any, Literal

from core.errors import PermissionDenied
from core.identity import Principal, Role
from hub.scope import CANVAS, GPU_REQUESTS, may_read
from schema import Collection
from schema.inventory import HOLDS, is_active
from schema.models import LeadStage

__all__ = ["COMMS_AGENT_ID", "GPU_WORKER_DEVICE", "GUARDED", "IN_SCOPE", "MANAGED",
           "check_gpu_request", "check_grant_role", "check_hold", "check_manage_user",
           "check_message_write", "check_names", "check_own_account", "check_purge",
           "check_revoke", "check_write", "comms_agent", "may_change", "may_read", "named_guids"]

GUARDED = frozenset({"people", "leads", "opportunities", "comms_threads"})
"""Collections whose records only their owner, their team's senior and managers change."""
MANAGED = frozenset({"projects", "towers", "units", "unit_media"})
"""Inventory collections only a SALES_DIRECTOR or ADMIN changes."""
IN_SCOPE = frozenset({"comm_events", "transcript_segments", "memory_facts", "calendar_events",
                      "insights"})
"""Collections written only within the author's read scope (a senior may write for a team
member, so a note on a junior's lead stays visible to the junior)."""
INSIGHT_DECISION = ("status", "decided_by", "decided_at", "decision_note")
SCOPE_FIELDS = ("owner_id", "team_id")
CONSENT_REVOKE_FIELDS = ("revoked_at", "deleted")

Row = Mapping[str, Any]


def may_change(principal: Principal, coll_name: str, row: Row) -> bool:
    """Whether ``principal`` may change the existing record ``row`` of ``coll_name`` (tenant
    already checked): managers always; a guarded record when it is unowned (clients only), the
    principal's own, or (seniors) their team's."""
    if principal.is_manager or coll_name not in GUARDED:
        return True
    owner, team = row.get("owner_id"), row.get("team_id")
    if owner is None and coll_name == "people":
        return True
    return _owns(principal, owner, team)


def _owns(principal: Principal, owner: str | None, team: str | None) -> bool:
    return owner == principal.user_id or (
        principal.role is Role.SENIOR_BROKER and principal.team_id is not None
        and team == principal.team_id)


def check_write(
    principal: Principal, coll: Collection, before: Row | None, after: Row,
) -> None:
    """Raise `PermissionDenied` with a reason code when ``principal`` may not make this change."""
    if after.get("tenant_id") != principal.tenant_id:
        raise PermissionDenied("records belong to your own tenant only", code="other_tenant")
    if before is not None and before.get("tenant_id") not in (None, principal.tenant_id):
        raise PermissionDenied("a record's tenant cannot change", code="other_tenant")
    if coll.name == CANVAS:
        check_canvas_write(principal, before, after)
    if coll.name == "leads":
        check_lead_stage(principal, before, after)
    if coll.name == HOLDS:
        check_hold(principal, before, after)

    if coll.name == "comms_messages":
        check_message_write(principal, before, after)
    if coll.name == "insights":
        check_insight_decision(before, after)
    if coll.name == GPU_REQUESTS:
        check_gpu_request(principal, before, after)
    if principal.is_manager:
        return
    if coll.name in IN_SCOPE:
        check_in_scope(principal, before, after)
    noun = coll.name[:-1] if coll.name.endswith("s") else coll.name
    if coll.name in GUARDED:
        if before is None:
            unowned_client = coll.name == "people" and after.get("owner_id") is None
            if after.get("owner_id") != principal.user_id and not unowned_client:
                raise PermissionDenied(f"a new {noun} must be owned by you", code="not_owner")
            if after.get("team_id") not in (None, principal.team_id):
                raise PermissionDenied(f"a new {noun} belongs to your own team",
                                       code="other_team")
        else:
            if not may_change(principal, coll.name, before):
                raise PermissionDenied(f"this {noun} belongs to another broker",
                                       code="not_owner")
            if any(after.get(f) != before.get(f) for f in SCOPE_FIELDS):
                raise PermissionDenied(
                    "only a SALES_DIRECTOR or ADMIN may reassign (owner or team)",
                    code="reassign_forbidden")
    if coll.name == "consents" and before is not None and any(
            after.get(f) != before.get(f) for f in CONSENT_REVOKE_FIELDS):
        check_revoke(principal, before)
    for name in coll.manager_only_fields:
        old = before.get(name) if before is not None else _default(coll, name)
        if after.get(name) != old:
            raise PermissionDenied(
                f"only a SALES_DIRECTOR or ADMIN may set {coll.name}.{name}",
                code="manager_only_field",
            )
    if coll.name in MANAGED:
        raise PermissionDenied(f"only a SALES_DIRECTOR or ADMIN may change {coll.name}",
                               code="manager_only")


def check_in_scope(principal: Principal, before: Row | None, after: Row) -> None:
    """A non-manager writes an `IN_SCOPE` record only when it is (and stays) in their scope."""
    noun = "record" if before is None else "record of another broker"
    held = before if before is not None else after
    if not _owns(principal, held.get("owner_id"), held.get("team_id")):
        raise PermissionDenied(f"this {noun} is outside your scope (your own leads, or your "
                               "team's for a senior)", code="not_owner")
    if before is None:
        if after.get("team_id") not in (None, principal.team_id):
            raise PermissionDenied("a new record belongs to your own team", code="other_team")
    elif any(after.get(f) != before.get(f) for f in SCOPE_FIELDS):
        raise PermissionDenied("only a SALES_DIRECTOR or ADMIN may reassign (owner or team)",
                               code="reassign_forbidden")


def check_insight_decision(before: Row | None, after: Row) -> None:
    """Once an insight is acted on or dismissed, that decision stands: the first committed wins,
    a later one is refused (for everyone, so two offline devices end with one decision)."""
    if before is None or before.get("status") in (None, "open"):
        return
    if any(after.get(f) != before.get(f) for f in INSIGHT_DECISION):
        raise PermissionDenied(
            f"this insight was already {before.get('status')} by {before.get('decided_by')} at "
            f"{before.get('decided_at')}", code="already_decided")


def check_revoke(principal: Principal, recorded: Row) -> None:
    """A consent (or a perception session's results) is revoked only by whoever recorded it,
    the senior broker of their team, or a manager."""
    if not principal.is_manager and not _owns(principal, recorded.get("owner_id"),
                                              recorded.get("team_id")):
        raise PermissionDenied("only who recorded a consent, their senior or a manager may"
                               " revoke it", code="not_owner")


def check_purge(principal: Principal, person: Row | None) -> None:
    """A client's perception results (QD scores, sessions) are purged only by whoever may change
    the client; ``person``: the client's row, None when there is no such client."""
    if person is not None and not may_change(principal, "people", person):
        raise PermissionDenied("this client belongs to another broker", code="not_owner")


NAMING = frozenset({"consents", "qd_scores", "perception_sessions"})
"""Sentinel's collections whose records name a client (``person_id``) and a lead (``lead_id``)."""
NAMED = {"people": ("person_id", "client"), "leads": ("lead_id", "lead")}
"""Named collection → the field naming it and what it is called."""


def named_guids(principal: Principal, coll_name: str, row: Row) -> list[str]:
    """The records (guids) that `check_names` judges a write of ``row`` against: the client and
    lead a consent or perception result names (none for a manager)."""
    if principal.is_manager or coll_name not in NAMING:
        return []
    return [f"{named}/{row[field]}" for named, (field, _) in NAMED.items() if row.get(field)]


def check_names(principal: Principal, coll_name: str, before: Row | None, after: Row,
                named: Mapping[str, Row | None]) -> None:
    """A consent or perception result names only a client and a lead the principal may read
    (as the Sentinel routes require), and one that names a client is revoked, deleted or purged
    only by whoever may purge that client's results (`check_purge`: a revocation purges them
    all). ``named``: the ``owner_id``, ``team_id`` and ``readers`` of each of `named_guids`,
    None for a record that does not exist (yet)."""
    noun = {"consents": "consent", "qd_scores": "QD score"}.get(coll_name, "perception session")
    for guid in named_guids(principal, coll_name, after):
        coll, _, _ = guid.partition("/")
        row = named[guid]
        if row is not None and not may_read(principal, coll, row.get("owner_id"),
                                            row.get("team_id"), row.get("readers")):
            raise PermissionDenied(f"this {noun} names a {NAMED[coll][1]} of another broker",
                                   code="not_owner")
    person = after.get("person_id")
    ends = CONSENT_REVOKE_FIELDS if coll_name == "consents" else ("deleted",)
    if before is not None and person and any(after.get(f) != before.get(f) for f in ends):
        check_purge(principal, named.get(f"people/{person}"))


def check_manage_user(principal: Principal, target_id: str, target_role: Role) -> None:
    """Who may manage an account (pair its devices, change its role, status or password):
    admins every account of their tenant; directors brokers and themselves; brokers nobody
    (their own password and sessions are theirs through other routes)."""
    if principal.role is Role.ADMIN:
        return
    if principal.role is Role.SALES_DIRECTOR and (
            target_id == principal.user_id or not target_role.at_least(Role.SALES_DIRECTOR)):
        return
    raise PermissionDenied(f"a {principal.role.value} may not manage a {target_role.value}'s"
                           " account", code="role_required")


SELF_CHANGES = {"role": "nobody changes their own role",
                "disable": "nobody disables their own account"}


def check_own_account(principal: Principal, target_id: str,
                      change: Literal["role", "disable"]) -> None:
    """Nobody changes their own role or disables their own account (so a tenant cannot lose
    its last manager by a slip)."""
    if target_id == principal.user_id:
        raise PermissionDenied(SELF_CHANGES[change], code="role_required")


def check_grant_role(principal: Principal, role: Role) -> None:
    """A role is granted only by someone who holds a higher one (admins: any role)."""
    if principal.role is not Role.ADMIN and role.at_least(principal.role):
        raise PermissionDenied(f"a {principal.role.value} may not grant {role.value}",
                               code="role_required")


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


# --- unit holds ---------------------------------------------------------------------------------


def check_hold(principal: Principal, before: Row | None, after: Row) -> None:
    """One holder at a time: a claim beside another (two brokers holding offline) is refused
    with the holder's name; a broker claims only for themselves; a live hold is changed or
    released only by its holder, their team's senior or a manager, and taken over by another
    broker only once it has expired."""
    claims = set(after.get("claims") or ())
    held = set(before.get("claims") or ()) if before is not None else set()
    unit = after.get("unit_id")
    if len(claims) > 1:
        holders = ", ".join(sorted(held or claims))
        raise PermissionDenied(f"unit {unit} is already held by {holders}: ask them or a "
                               "SALES_DIRECTOR to release it", code="unit_held")
    holder = after.get("holder_id")
    if claims != ({holder} if holder else set()):
        raise PermissionDenied("a hold's holder is its one claim (set both, or clear both to "
                               "release)", code="hold_inconsistent")
    if after.get("unit_id") != after.get("id"):
        raise PermissionDenied("a hold's id is its unit's id (one hold document per unit)",
                               code="hold_inconsistent")
    if claims - held and not principal.is_manager and claims != {principal.user_id}:
        raise PermissionDenied("a broker places holds only for themselves", code="not_owner")
    if before is None or not held or principal.is_manager or _owns(
            principal, before.get("holder_id"), before.get("team_id")):
        return
    if any(after.get(k) != before.get(k) for k in after):
        if claims == {principal.user_id} and not is_active(before):
            return  # taking over an expired hold
        raise PermissionDenied(f"unit {unit} is held by {', '.join(sorted(held))}: only they, "
                               "their senior or a SALES_DIRECTOR may change or release the hold",
                               code="unit_held")


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


# --- GPU requests made on devices ---------------------------------------------------------------

GPU_WORKER_DEVICE = "hub:gpu-requests"
"""The device id of the hub's GPU request watcher: no paired device, REST caller or Yjs client
has it, so only the hub records a request's outcome."""
GPU_REQUEST_ASKED = ("kind", "question", "room_type", "style", "photo", "requested_at",
                     "owner_id", "team_id")
GPU_REQUEST_OUTCOME = ("status", "progress", "job_id", "answer", "result_url", "error",
                       "finished_at")
_UNSET_OUTCOME = {"status": "requested", "progress": 0}


def check_gpu_request(principal: Principal, before: Mapping[str, Any] | None,
                      after: Mapping[str, Any]) -> None:
    """A request is made by its owner (it runs as them) with no outcome, never changed after,
    only withdrawn (deleted) by its owner; its outcome is written by the hub's watcher alone,
    which changes nothing of the request but empties its photo."""
    if principal.device_id == GPU_WORKER_DEVICE:
        if before is None or any(before.get(k) != after.get(k) for k in GPU_REQUEST_ASKED
                                 if k != "photo"):
            raise PermissionDenied("the hub only records a GPU request's outcome",
                                   code="gpu_worker_only")
        return
    if before is None:
        if after.get("owner_id") != principal.user_id:
            raise PermissionDenied("a GPU request runs as whoever made it: it must be owned "
                                   "by you", code="not_owner")
        if any(after.get(k) != _UNSET_OUTCOME.get(k) for k in GPU_REQUEST_OUTCOME):
            raise PermissionDenied("a new GPU request starts as requested; only the hub "
                                   "records its status and result", code="gpu_outcome_by_hub")
        return
    if before.get("owner_id") != principal.user_id:
        raise PermissionDenied("only whoever made a GPU request may withdraw it",
                               code="not_owner")
    changed = [k for k in (*GPU_REQUEST_ASKED, *GPU_REQUEST_OUTCOME)
               if before.get(k) != after.get(k)]
    if changed:
        raise PermissionDenied(f"a GPU request is not changed once made ({', '.join(changed)}"
                               "); withdraw it and ask again", code="gpu_request_fixed")

# --- Comms messages -----------------------------------------------------------------------------

COMMS_AGENT_ID = "hub:comms"
"""The user id the hub's comms agent writes as (webhooks, the sender); no account can have it
(accounts get generated ids)."""


def comms_agent(tenant_id: str) -> Principal:
    """Who writes what providers report: inbound messages and delivery statuses."""
    return Principal(tenant_id, COMMS_AGENT_ID, Role.ADMIN)


def check_message_write(principal: Principal, before: Mapping[str, Any] | None,
                        after: Mapping[str, Any]) -> None:
    """People write outbound messages, queued, as themselves (managers: on anyone's behalf), in
    a conversation scope they own (the thread's owner and team); afterwards only a queued
    message may be withdrawn (deleted). Everything a provider reports is the comms agent's to
    write."""
    if principal.user_id == COMMS_AGENT_ID:
        return
    if before is None:
        if after.get("direction") != "outbound" or after.get("status") != "queued":
            raise PermissionDenied("a message is written outbound and queued; the provider "
                                   "reports the rest", code="message_status")
        if after.get("provider_message_id") is not None or after.get("error") is not None:
            raise PermissionDenied("only the hub records a provider's answer",
                                   code="message_status")
        if principal.is_manager:
            return
        if after.get("author_id") != principal.user_id:
            raise PermissionDenied("a message's author is whoever writes it", code="not_owner")
        if not _owns(principal, after.get("owner_id"), after.get("team_id")):
            raise PermissionDenied("this conversation belongs to another broker",
                                   code="not_owner")
        return
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    if not changed:
        return
    if changed != {"deleted"} or before.get("status") != "queued":
        raise PermissionDenied("a message is not edited once written; only a queued one may be "
                               "withdrawn", code="message_immutable")
    if not principal.is_manager and not _owns(principal, before.get("owner_id"),
                                              before.get("team_id")):
        raise PermissionDenied("this conversation belongs to another broker", code="not_owner")
