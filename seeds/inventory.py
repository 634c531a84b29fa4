"""A developer's inventory for the synthetic tenant: projects, their towers, units stacked floor
by floor with prices that rise with height and view, sales statuses, live holds by brokers, and
media references (brochures, renders, floor plans)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

MEDIA_HOST = "https://media.velocity.example"


@dataclass(frozen=True)
class ProjectPlan:
    name: str
    city: str
    towers: tuple[str, ...]
    floors: int
    stacks: tuple[tuple[str, int, float], ...]
    """Per floor, the units of one tower: (configuration, area in sq ft, base price INR)."""
    sold_share: float
    """How much of the project is sold or booked already (older launches: more)."""


PROJECTS = (
    ProjectPlan("Aurelia Towers", "Mumbai", ("Tower A", "Tower B"), 42,
                (("3BHK", 1650, 5.5e7), ("3BHK", 1720, 5.8e7), ("4BHK", 2400, 9.5e7)), 0.45),
    ProjectPlan("The Crest", "Mumbai", ("Crest North",), 55,
                (("4BHK", 2600, 1.1e8), ("Penthouse", 4200, 2.4e8)), 0.3),
    ProjectPlan("Palm Vista", "Dubai", ("Vista 1", "Vista 2"), 30,
                (("2BHK", 1100, 3.2e7), ("3BHK", 1600, 5.2e7)), 0.6),
    ProjectPlan("Serene Bay", "Goa", ("Villas",), 1,
                tuple(("Villa", 5200, 3.1e8) for _ in range(8)), 0.25),
    ProjectPlan("Skyline One", "Bengaluru", ("Tower 1", "Tower 2", "Tower 3"), 28,
                (("2BHK", 1150, 1.6e7), ("3BHK", 1600, 2.4e7)), 0.5),
    ProjectPlan("Verdant Estates", "Pune", ("Phase I",), 20,
                (("2BHK", 1050, 1.2e7), ("3BHK", 1500, 1.8e7), ("3BHK", 1550, 1.9e7)), 0.7),
)
FACINGS = ("sea", "garden", "city", "east", "west", "pool")
PREMIUM_FACINGS = {"sea": 1.12, "pool": 1.05, "garden": 1.04}
FLOOR_STEP = 4
"""Every fourth floor is in the inventory (a sample, to keep the tenant small)."""
HELD_SHARE = 0.06


def inventory_records(rng: random.Random, new_id: Callable[[str], str], tenant_id: str,
                      brokers: Sequence[Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Projects, towers, units, holds and media of one tenant; ``brokers``: who may hold
    (objects with ``user_id`` and ``team_id``)."""
    base = {"tenant_id": tenant_id}
    for plan in PROJECTS:
        project_id = new_id("projects")
        slug = plan.name.lower().replace(" ", "-")
        yield "projects", project_id, {
            **base, "name": plan.name, "city": plan.city, "developer": "Velocity Developers",
            "description": f"{plan.name}: {len(plan.towers)} tower(s) of luxury residences in "
                           f"{plan.city}."}
        for kind, name in (("brochure", "brochure.pdf"), ("image", "render-day.jpg"),
                           ("tour", "tour.html")):
            yield "unit_media", new_id("unit_media"), {
                **base, "project_id": project_id, "kind": kind,
                "uri": f"{MEDIA_HOST}/{slug}/{name}", "caption": f"{plan.name} {kind}"}
        for letter, tower in zip("ABCDEFGH", plan.towers, strict=False):
            tower_id = new_id("towers")
            yield "towers", tower_id, {**base, "project_id": project_id, "name": tower,
                                       "floors": plan.floors}
            for floor in range(1, plan.floors + 1, FLOOR_STEP if plan.floors > 1 else 1):
                for stack, (config, area, price) in enumerate(plan.stacks, start=1):
                    yield from _unit(rng, new_id, base, brokers, plan, project_id, tower_id,
                                     f"{letter}-{floor:02d}{stack:02d}", floor, config, area,
                                     price, slug)


def _unit(rng: random.Random, new_id: Callable[[str], str], base: dict[str, Any],
          brokers: Sequence[Any], plan: ProjectPlan, project_id: str, tower_id: str,
          unit_no: str, floor: int, config: str, area: int, price: float, slug: str
          ) -> Iterator[tuple[str, str, dict[str, Any]]]:
    unit_id = new_id("units")
    facing = rng.choice(FACINGS)
    height = 1 + floor / 150
    roll = rng.random()
    status = ("SOLD" if roll < plan.sold_share * 0.75 else
              "BOOKED" if roll < plan.sold_share else "AVAILABLE")
    yield "units", unit_id, {
        **base, "project_id": project_id, "tower_id": tower_id, "unit_no": unit_no,
        "configuration": config, "floor": floor, "facing": facing,
        "area_sqft": float(area + rng.randint(-60, 90)),
        "price": round(price * height * PREMIUM_FACINGS.get(facing, 1.0)
                       * rng.uniform(0.96, 1.04), -4),
        "currency": "INR", "status": status}
    if config in ("Penthouse", "Villa", "4BHK"):
        yield "unit_media", new_id("unit_media"), {
            **base, "unit_id": unit_id, "project_id": project_id, "kind": "floor_plan",
            "uri": f"{MEDIA_HOST}/{slug}/plans/{unit_no}.pdf", "caption": f"{unit_no} plan"}
    if status == "AVAILABLE" and brokers and rng.random() < HELD_SHARE:
        broker = rng.choice(brokers)
        yield "unit_holds", unit_id, {
            **base, "unit_id": unit_id, "project_id": project_id,
            "holder_id": broker.user_id, "claims": [broker.user_id],
            "owner_id": broker.user_id, "team_id": broker.team_id,
            "note": "held for a client's second visit"}
