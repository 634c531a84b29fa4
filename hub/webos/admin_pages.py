"""Admin pages for ADMINs and SALES_DIRECTORs: devices (pairing code with its QR, revoke),
users and roles, the audit log, the GPU mode and queues. Every change goes through
`hub.accounts` and the GPU front, which apply `hub.policy` (who may manage whom)."""

from __future__ import annotations

import base64
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from core.errors import PermissionDenied, RecordInvalid, VelocityError
from core.identity import Principal, Role
from gpu_hub.api import admin_routes as gpu_admin
from gpu_hub.front import GpuFront
from gpu_hub.mode import GpuMode
from hub.api.devices import devices as device_list
from hub.identity import identity_key
from hub.service import Hub
from hub.storage import audit
from hub.webos.render import PageRoute, redirect, render
from hub.webos.session import CsrfForm, PagePrincipal
from ios_bridge.pairing import qr_png, sign_payload

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DEVICE_KINDS = ("ipad", "kiosk", "desktop")


async def manager_page(principal: PagePrincipal) -> Principal:
    """Admin pages: ADMINs and SALES_DIRECTORs only (as the API's admin routes)."""
    if not principal.is_manager:
        raise PermissionDenied("requires role ADMIN or SALES_DIRECTOR", code="role_required")
    return principal


ManagerPage = Annotated[Principal, Depends(manager_page)]


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


# --- devices -------------------------------------------------------------------------------


@router.get("/admin/devices")
async def devices(request: Request, principal: ManagerPage) -> Response:
    hub = _hub(request)
    users = [u for u in await hub.accounts.users(principal.tenant_id) if u.active]
    return render(request, "admin_devices.html", principal,
                  devices=await device_list(principal, hub), users=users, kinds=DEVICE_KINDS,
                  pairing=None)


@router.post("/admin/devices/pairing")
async def pairing(request: Request, principal: ManagerPage, form: CsrfForm) -> Response:
    """A pairing code for a user's new device, with the signed QR the iPad scans."""
    hub = _hub(request)
    kind = form.get("device_kind", "ipad")
    try:
        if kind not in DEVICE_KINDS:
            raise RecordInvalid(f"device kind must be one of {', '.join(DEVICE_KINDS)}")
        ttl = hub.settings.pairing_code_ttl_s
        code = await hub.accounts.issue_pairing_code(principal, form.get("user_id", ""), kind,
                                                     ttl)
    except VelocityError as exc:
        return redirect("/admin/devices", err=exc.message)
    key = await identity_key(hub.storage.settings)
    payload = sign_payload(key, str(request.base_url).rstrip("/"), code, int(time.time()) + ttl)
    users = [u for u in await hub.accounts.users(principal.tenant_id) if u.active]
    return render(request, "admin_devices.html", principal,
                  devices=await device_list(principal, hub), users=users, kinds=DEVICE_KINDS,
                  pairing={
                      "code": code, "user_id": form.get("user_id"), "ttl_min": ttl // 60,
                      "fingerprint": payload.fingerprint,
                      "qr": base64.b64encode(qr_png(payload, scale=6)).decode()})


@router.post("/admin/devices/{device_id}/revoke")
async def revoke(request: Request, principal: ManagerPage, device_id: str, form: CsrfForm
                 ) -> Response:
    """Revoke a device: refused from now on, its live sessions closed on every hub."""
    hub = _hub(request)
    try:
        await hub.accounts.revoke(principal, device_id)
    except VelocityError as exc:
        return redirect("/admin/devices", err=exc.message)
    await hub.revoke_device(device_id)
    return redirect("/admin/devices", msg=f"Device {device_id} revoked.")


# --- users ---------------------------------------------------------------------------------


@router.get("/admin/users")
async def users(request: Request, principal: ManagerPage) -> Response:
    hub = _hub(request)
    grantable = [r for r in Role if principal.role is Role.ADMIN or not r.at_least(
        principal.role)]
    return render(request, "admin_users.html", principal,
                  users=await hub.accounts.users(principal.tenant_id), roles=list(Role),
                  grantable=grantable)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise RecordInvalid(f"unknown role {value!r}") from None


@router.post("/admin/users")
async def create_user(request: Request, principal: ManagerPage, form: CsrfForm) -> Response:
    hub = _hub(request)
    try:
        email = form.get("email", "").strip()
        if "@" not in email or len(email) > 254:
            raise RecordInvalid("enter the new user's email address")
        user = await hub.accounts.add_user(
            principal, email, form.get("password", ""), _role(form.get("role", "")),
            form.get("full_name", "").strip()[:200] or email,
            form.get("team_id", "").strip()[:64] or None)
    except VelocityError as exc:
        return redirect("/admin/users", err=exc.message)
    return redirect("/admin/users", msg=f"Account created for {user.email}.")


@router.post("/admin/users/{user_id}")
async def change_user(request: Request, principal: ManagerPage, user_id: str, form: CsrfForm
                      ) -> Response:
    """One account action from the users table: role, disable, enable or password reset."""
    hub = _hub(request)
    action = form.get("action", "")
    try:
        if action == "role":
            await hub.accounts.change(principal, user_id, role=_role(form.get("role", "")))
            done = "Role changed; their sessions end and devices reconnect with the new scope."
        elif action in ("disable", "enable"):
            await hub.accounts.set_active(principal, user_id, action == "enable")
            done = f"Account {action}d."
        elif action == "password":
            await hub.accounts.reset_password(principal, user_id, form.get("password", ""))
            done = "Password reset; their sessions end."
        else:
            raise RecordInvalid(f"unknown action {action!r}")
    except VelocityError as exc:
        return redirect("/admin/users", err=exc.message)
    return redirect("/admin/users", msg=done)


# --- audit and GPU -------------------------------------------------------------------------


AUDIT_KINDS = {"": "All actions", "login": "Sign-ins", "login.": "Refused sign-ins",
               "user.": "Account changes", "device.": "Devices", "lead.": "Lead moves and edits",
               "opportunity.": "Opportunity moves and edits", "create": "Records created",
               "write": "Records changed", "refused": "Refused changes"}
"""The audit filter's choices (``noun.``: every action of that noun,
`hub.storage.audit.AuditFilter`)."""
AUDIT_PAGE = 50


@router.get("/admin/audit")
async def audit_log(request: Request, principal: ManagerPage,
                    user: str = Query("", max_length=64), kind: str = Query("", max_length=40),
                    target: str = Query("", max_length=200),
                    before: int | None = Query(None, ge=1)) -> Response:
    hub = _hub(request)
    entries = await hub.storage.audit.entries(principal.tenant_id, audit.AuditFilter(
        user_id=user or None, action=kind or None, target=target.strip() or None,
        before=before, limit=AUDIT_PAGE))
    users = await hub.accounts.users(principal.tenant_id)
    return render(request, "admin_audit.html", principal, entries=entries, user=user,
                  kind=kind, target=target, kinds=AUDIT_KINDS,
                  names={u.user_id: u.full_name for u in users}, users=users,
                  next_before=entries[-1]["audit_id"] if len(entries) == AUDIT_PAGE else None)


def _front(request: Request) -> GpuFront:
    front: GpuFront = request.app.state.gpu
    return front


@router.get("/admin/gpu")
async def gpu(request: Request, principal: ManagerPage) -> Response:
    state = await gpu_admin.queues(principal, _front(request))
    return render(request, "admin_gpu.html", principal, state=state,
                  modes=[m.value for m in GpuMode])


@router.post("/admin/gpu/mode")
async def gpu_mode(request: Request, principal: ManagerPage, form: CsrfForm) -> Response:
    try:
        mode = GpuMode(form.get("mode", ""))
    except ValueError:
        return redirect("/admin/gpu", err=f"unknown GPU mode {form.get('mode', '')!r}")
    try:
        await gpu_admin.switch_gpu_mode(gpu_admin.ModeSwitch(
            mode=mode, cancel_running=form.get("cancel_running") == "on"), principal,
            _front(request))
    except VelocityError as exc:
        return redirect("/admin/gpu", err=exc.message)
    return redirect("/admin/gpu", msg=f"GPU mode switching to {mode.value}.")
