"""Request dependencies of the GPU front's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.errors import ConfigError, PermissionDenied
from core.identity import MANAGERS, Principal
from gpu_hub.front import GpuFront


async def principal() -> Principal:
    """Replaced by the hub's authentication when the routes are mounted."""
    raise ConfigError("GPU front routes are not mounted with an authentication dependency")


def get_front(request: Request) -> GpuFront:
    front: GpuFront = request.app.state.gpu
    return front


PrincipalDep = Annotated[Principal, Depends(principal)]
FrontDep = Annotated[GpuFront, Depends(get_front)]


async def manager(caller: PrincipalDep) -> Principal:
    if caller.role not in MANAGERS:
        raise PermissionDenied("requires role ADMIN or SALES_DIRECTOR", code="role_required")
    return caller


ManagerDep = Annotated[Principal, Depends(manager)]
