"""Write permissions: what a principal may change in a record (checked before anything commits).

Rules are checked on the record's content before and after the update (computed in the sandbox),
so they judge what an update really does, whatever it claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import PermissionDenied
from core.identity import Principal
from hub.scope import may_read
from schema import Collection


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
