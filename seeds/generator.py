"""A deterministic synthetic CRM for a luxury real-estate developer.

The same (tenant, size, seed) always yields the same records, ids and timestamps. Every record is
produced as field values for its collection and validates against the schema.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.identity import Role
from core.ids import deterministic_id
from seeds import comms, mobile_edge
from seeds.inventory import inventory_records

SIZES = {"small": 300, "medium": 10_000, "large": 100_000}
EPOCH = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

FIRST = ["Aarav", "Vihaan", "Ishaan", "Kabir", "Reyansh", "Zara", "Anaya", "Meera", "Kiara",
         "Saanvi", "Omar", "Layla", "Rohan", "Nisha", "Arjun", "Tara", "Dev", "Priya", "Sameer",
         "Aisha", "Vikram", "Rhea", "Karan", "Ira", "Farhan", "Naina", "Aditya", "Myra"]
LAST = ["Mehta", "Khan", "Rao", "Iyer", "Shah", "Kapoor", "Malhotra", "Reddy", "Singhania",
        "Bose", "Chopra", "Desai", "Nair", "Agarwal", "Sethi", "Pillai", "Oberoi", "Jain"]
CITIES = [("Mumbai", "India"), ("Dubai", "UAE"), ("London", "UK"), ("Singapore", "Singapore"),
          ("Bengaluru", "India"), ("Pune", "India"), ("New York", "USA"), ("Delhi", "India")]
SEGMENTS = ["whale", "hni", "nri", "investor", "end_user"]
SOURCES = ["referral", "website", "instagram", "walk_in", "channel_partner", "event"]
CONFIGS = [("2BHK", 1100, 32e6), ("3BHK", 1650, 55e6), ("4BHK", 2400, 95e6),
           ("Penthouse", 4200, 240e6), ("Villa", 5200, 310e6)]
OBJECTIONS = ["price is above budget", "wants a higher floor", "worried about possession date",
              "comparing with a competitor project", "needs spouse's approval",
              "prefers ready-to-move"]
PREFERENCES = ["sea view", "east facing", "private pool", "club access", "two car parks",
               "home office", "vastu compliant"]
TIMELINES = ["within 3 months", "this quarter", "6-12 months", "after Diwali", "next year"]
MESSAGES = [
    "Hi {first}, sharing the brochure for {project} as discussed.",
    "Thanks! Can we see the {config} sample flat this weekend?",
    "Sure, Saturday 11am works. I'll send the location pin.",
    "What is the best price you can do on the {config}?",
    "We have a festive offer till month end, let me check with my director.",
    "My wife liked the {pref}. Is it available on a higher floor?",
]
CALLS = [
    "Discussed {config} at {project}; client asked about {pref}. Budget around {budget} Cr.",
    "Follow-up call: client is {objection}. Agreed to revisit pricing next week.",
    "Client confirmed site visit; wants to bring family. Timeline {timeline}.",
]


@dataclass(frozen=True)
class SeedUser:
    user_id: str
    email: str
    full_name: str
    role: Role
    team_id: str


@dataclass
class Dataset:
    tenant_id: str
    users: list[SeedUser] = field(default_factory=list)
    records: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def count(self, collection: str) -> int:
        return sum(1 for c, _, _ in self.records if c == collection)


class _Gen:
    def __init__(self, tenant_id: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ns = f"velocity-seed/{tenant_id}/{seed}"
        self.tenant_id = tenant_id
        self.counters: dict[str, int] = {}

    def id(self, collection: str) -> str:
        n = self.counters.get(collection, 0)
        self.counters[collection] = n + 1
        return deterministic_id(self.ns, f"{collection}:{n}")

    def when(self, start_days: float, span_days: float) -> datetime:
        offset = start_days + self.rng.random() * span_days
        return (EPOCH + timedelta(days=offset)).replace(microsecond=0)


def generate(tenant_id: str = "acme", size: str = "small", seed: int = 7,
             people: int | None = None) -> Dataset:
    """Build a tenant's dataset; ``people`` overrides the size's person count."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    g = _Gen(tenant_id, seed)
    data = Dataset(tenant_id)
    data.users = _users(tenant_id, max(4, (people or SIZES[size]) // 60))
    brokers = [u for u in data.users if u.role in (Role.SENIOR_BROKER, Role.JUNIOR_BROKER)]
    data.records.extend(_dated(list(inventory_records(g.rng, g.id, tenant_id, brokers)),
                               EPOCH - timedelta(days=30)))
    units = [(rid, v) for c, rid, v in data.records if c == "units"]
    projects = [(rid, v) for c, rid, v in data.records if c == "projects"]
    for _ in range(people or SIZES[size]):
        data.records.extend(_dated(list(_person_story(g, brokers, projects, units))))
    data.records.extend(comms.conversations(tenant_id, seed, data.records))
    data.records.extend(mobile_edge.records(g, data))
    return data


_EVENT_TIMES = ("occurred_at", "scored_at", "changed_at")


def _dated(records: list[tuple[str, str, dict[str, Any]]], start: datetime | None = None
           ) -> list[tuple[str, str, dict[str, Any]]]:
    """Give every record a ``created_at``: its own event's time, else the earliest event of the
    story it belongs to (``start`` when the story has none)."""
    times = [v[k] for _, _, v in records for k in _EVENT_TIMES if v.get(k)]
    first = min(times, default=(start or EPOCH).isoformat())
    for _, _, values in records:
        event = next((values[k] for k in _EVENT_TIMES if values.get(k)), None)
        values.setdefault("created_at", event or first)
    return records


def _users(tenant_id: str, n_brokers: int) -> list[SeedUser]:
    users = [
        SeedUser(f"{tenant_id}-admin", f"admin@{tenant_id}.example", "Asha Admin", Role.ADMIN,
                 "hq"),
        SeedUser(f"{tenant_id}-director", f"director@{tenant_id}.example", "Raj Director",
                 Role.SALES_DIRECTOR, "hq"),
    ]
    for i in range(n_brokers):
        role = Role.SENIOR_BROKER if i % 3 == 0 else Role.JUNIOR_BROKER
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}"
        users.append(SeedUser(f"{tenant_id}-broker-{i}", f"broker{i}@{tenant_id}.example",
                              name, role, f"team-{i % 3}"))
    return users


def _base(g: _Gen, owner: SeedUser | None = None) -> dict[str, Any]:
    base: dict[str, Any] = {"tenant_id": g.tenant_id}
    if owner is not None:
        base["owner_id"], base["team_id"] = owner.user_id, owner.team_id
    return base


def _person_story(
    g: _Gen, brokers: list[SeedUser], projects: list[tuple[str, dict[str, Any]]],
    units: list[tuple[str, dict[str, Any]]],
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    rng = g.rng
    broker = rng.choice(brokers)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, country = rng.choice(CITIES)
    segment = rng.choices(SEGMENTS, [1, 3, 2, 2, 4])[0]
    person_id = g.id("people")
    household_id = g.id("households")
    account_id = None
    if segment in ("whale", "investor") and rng.random() < 0.6:
        account_id = g.id("accounts")
        kind = "family_office" if segment == "whale" else "company"
        yield "accounts", account_id, {**_base(g), "name": f"{last} {kind.replace('_', ' ')}",
                                       "kind": kind, "notes": f"Invests through the {last} "
                                       f"{'family office' if segment == 'whale' else 'group'}."}
    yield "households", household_id, {**_base(g), "name": f"{last} family", "city": city,
                                       "primary_person_id": person_id}
    yield "people", person_id, {
        **_base(g, broker), "full_name": f"{first} {last}",
        "primary_phone": f"+91 9{rng.randint(100000000, 999999999)}",
        "email": f"{first}.{last}{rng.randint(1, 99)}@mail.example".lower(), "city": city,
        "country": country, "segment": segment, "source": rng.choice(SOURCES),
        "household_id": household_id, "account_id": account_id,
        "tags": rng.sample(["vip", "repeat", "nri", "fast"], 1),
        "notes": f"{first} came through {rng.choice(SOURCES)}. Prefers {rng.choice(PREFERENCES)}.",
    }
    if rng.random() < 0.3:
        spouse_id = g.id("people")
        yield "people", spouse_id, {**_base(g, broker), "full_name": f"{rng.choice(FIRST)} {last}",
                                    "city": city, "country": country,
                                    "household_id": household_id}
        yield "relationships", g.id("relationships"), {**_base(g), "person_id": person_id,
                                                       "related_person_id": spouse_id,
                                                       "kind": "spouse"}
    project_id, project = rng.choice(projects)
    config, _, base_price = rng.choice(CONFIGS)
    budget = base_price * rng.uniform(0.8, 1.4)
    stage_path = ["NEW", "CONTACTED", "QUALIFIED", "SITE_VISIT", "NEGOTIATION", "WON"]
    depth = rng.choices(range(6), [2, 3, 3, 3, 2, 1])[0]
    lost = rng.random() < 0.12
    stage = "LOST" if lost else stage_path[depth]
    lead_id = g.id("leads")
    start = rng.random() * 150
    pref, objection, timeline = rng.choice(PREFERENCES), rng.choice(OBJECTIONS), rng.choice(
        TIMELINES)
    interest = min(100, max(1, int(20 + depth * 14 + rng.gauss(0, 8))))
    lead = {
        **_base(g, broker), "person_id": person_id, "stage": stage, "source": rng.choice(SOURCES),
        "project_id": project_id, "budget_min": round(budget * 0.85, -5),
        "budget_max": round(budget * 1.1, -5), "currency": "INR", "timeline": timeline,
        "notes": f"Looking for a {config} at {project['name']}; {pref}.",
    }
    yield "leads", lead_id, lead
    yield "property_interests", g.id("property_interests"), {
        **_base(g), "person_id": person_id, "project_id": project_id, "configuration": config,
        "level": min(5, 1 + depth)}
    previous = None
    for i, step in enumerate(stage_path[: depth + 1] + (["LOST"] if lost else [])):
        yield "stage_history", g.id("stage_history"), {
            **_base(g), "lead_id": lead_id, "from_stage": previous, "to_stage": step,
            "changed_by": broker.user_id, "changed_at": g.when(start + i * 9, 3).isoformat()}
        previous = step
    fill = {"first": first, "project": project["name"], "config": config, "pref": pref,
            "budget": f"{budget / 1e7:.1f}", "objection": objection, "timeline": timeline}
    for i in range(rng.randint(2, 3 + depth * 2)):
        kind = rng.choices(["message", "call", "email", "visit", "note"], [5, 3, 1, 1, 1])[0]
        if kind == "visit" and depth < 3:
            kind = "call"
        interaction_id = g.id("interactions")
        template = rng.choice(CALLS if kind == "call" else MESSAGES)
        body = template.format(**fill)
        yield "interactions", interaction_id, {
            **_base(g, broker), "person_id": person_id, "lead_id": lead_id, "kind": kind,
            "channel": {"message": "whatsapp", "call": "phone", "email": "email",
                        "visit": "site", "note": "crm"}[kind],
            "direction": rng.choice(["inbound", "outbound"]),
            "occurred_at": g.when(start + i * 6, 5).isoformat(),
            "duration_s": rng.randint(60, 900) if kind == "call" else None,
            "summary": body[:120], "body": body}
        if kind in ("call", "visit") and rng.random() < 0.7:
            fact_kind = rng.choice(["budget", "objection", "timeline", "preference"])
            value = {"budget": f"INR {budget / 1e7:.1f} Cr", "objection": objection,
                     "timeline": timeline, "preference": pref}[fact_kind]
            yield "facts", g.id("facts"), {**_base(g), "person_id": person_id,
                                           "interaction_id": interaction_id, "kind": fact_kind,
                                           "value": value,
                                           "confidence": round(rng.uniform(0.6, 0.98), 2)}
    if depth >= 3:
        for s in range(rng.randint(1, 3)):
            score = min(100, max(1, interest + s * 6 + int(rng.gauss(0, 5))))
            lead["last_qd"] = score  # the latest score (they come in time order)
            yield "qd_scores", g.id("qd_scores"), {
                **_base(g), "person_id": person_id, "lead_id": lead_id, "score": score,
                "source": "sentinel", "scored_at": g.when(start + 30 + s * 10, 2).isoformat(),
                "signals": rng.sample(["smile", "lean_in", "dwell", "gaze_on_screen"], 2)}
    if depth >= 4:
        unit_id, unit = rng.choice(units)
        yield "opportunities", g.id("opportunities"), {
            **_base(g, broker), "lead_id": lead_id, "person_id": person_id, "unit_id": unit_id,
            "stage": "CLOSED_WON" if stage == "WON" else rng.choice(["PROPOSAL", "NEGOTIATION"]),
            "value": unit["price"], "currency": "INR", "probability": 0.9 if stage == "WON" else
            round(rng.uniform(0.3, 0.7), 2)}
    if not lost and stage != "WON":
        yield "tasks", g.id("tasks"), {
            **_base(g, broker), "title": rng.choice(["Follow up on pricing",
                                                     "Share floor plans", "Schedule site visit",
                                                     "Send cost sheet"]),
            "person_id": person_id, "lead_id": lead_id, "assignee_id": broker.user_id,
            "due_at": g.when(start + 40, 20).isoformat(), "priority": rng.randint(1, 3)}
