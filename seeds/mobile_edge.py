"""Mobile-edge seed records for a generated CRM: communication events (calls with their
transcripts, messages, notes), memory facts, calendar appointments and insights, each attached
to a lead and in its broker's scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seeds.generator import Dataset, _Gen

CALL_LINES = [
    ("broker", "Good morning {first}, following up on the {config} we saw."),
    ("client", "Yes, we liked it, but the price is a stretch for us."),
    ("broker", "There is a festive scheme till month end; I can check the higher floors."),
    ("client", "My wife wants the {pref}. Can we visit again on Saturday?"),
    ("broker", "Saturday at eleven works. I will block the sample flat."),
]
MEMORY = [
    ("budget", "Budget around INR {budget} Cr, flexible for the right floor"),
    ("timeline", "Wants possession {timeline}"),
    ("preference", "Insists on {pref}"),
    ("objection", "Finds the price above budget"),
    ("family", "Spouse takes the final decision"),
    ("financing", "Pre-approved home loan with HDFC"),
]
INSIGHTS = [
    ("next_best_action", "Offer the festive scheme before month end",
     "Two price objections in the last calls; the scheme closes the gap."),
    ("risk", "No contact in three weeks",
     "Engagement dropped after the last site visit; call before a competitor does."),
    ("upsell", "Show the penthouse floor plan",
     "Budget signals sit above the configuration on file."),
    ("follow_up", "Send the cost sheet promised on the call",
     "The client asked for the cost sheet during the last conversation."),
]
NAMES = ["Aarav", "Zara", "Meera", "Kabir", "Layla", "Rohan", "Anaya", "Omar"]


def records(g: _Gen, data: Dataset) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The mobile-edge records of about two leads in five (deterministic for the generator)."""
    rng = g.rng
    leads = [(rid, v) for c, rid, v in data.records if c == "leads"]
    for lead_id, lead in leads:
        if rng.random() > 0.4:
            continue
        scope = {"tenant_id": g.tenant_id, "owner_id": lead.get("owner_id"),
                 "team_id": lead.get("team_id"), "lead_id": lead_id}
        fill = {"first": rng.choice(NAMES), "config": rng.choice(["3BHK", "4BHK", "Villa"]),
                "pref": rng.choice(["sea view", "private pool", "east facing"]),
                "budget": f"{rng.uniform(4, 30):.1f}", "timeline": rng.choice(
                    ["within 3 months", "this quarter", "next year"])}
        when = g.when(0, 150)
        event_id = g.id("comm_events")
        call = rng.random() < 0.6
        yield "comm_events", event_id, {
            **scope, "person_id": lead["person_id"],
            "channel": "call" if call else rng.choice(["whatsapp", "meeting", "note"]),
            "direction": "outbound", "occurred_at": when.isoformat(),
            "duration_s": rng.randint(120, 900) if call else None,
            "source": "import" if call else "logged",
            "summary": "Pricing follow-up" if call else "Shared brochure and floor plans",
            "body": "Client open to a second visit." if call else "Brochure sent on WhatsApp.",
            "recording_ref": f"vault://calls/{event_id}.m4a" if call else None,
            "created_at": when.isoformat()}
        if call:
            start = 0
            for position, (speaker, line) in enumerate(CALL_LINES[: rng.randint(3, 5)]):
                length = rng.randint(2_000, 9_000)
                yield "transcript_segments", g.id("transcript_segments"), {
                    **scope, "event_id": event_id, "position": position, "speaker": speaker,
                    "start_ms": start, "end_ms": start + length, "text": line.format(**fill),
                    "created_at": when.isoformat()}
                start += length
        for category, fact in rng.sample(MEMORY, rng.randint(1, 3)):
            yield "memory_facts", g.id("memory_facts"), {
                **scope, "person_id": lead["person_id"], "event_id": event_id,
                "category": category, "fact": fact.format(**fill),
                "confidence": round(rng.uniform(0.6, 0.97), 2), "created_at": when.isoformat()}
        if rng.random() < 0.5:
            starts = (when + timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 6))
                      ).replace(minute=0, second=0)
            yield "calendar_events", g.id("calendar_events"), {
                **scope, "person_id": lead["person_id"], "kind": "site_visit",
                "title": f"Site visit with {fill['first']}", "starts_at": starts.isoformat(),
                "duration_min": rng.choice([45, 60, 90]),
                "location": "Sales gallery", "status": rng.choice(
                    ["scheduled", "scheduled", "done", "cancelled"]),
                "created_at": when.isoformat()}
        if rng.random() < 0.6:
            kind, title, body = rng.choice(INSIGHTS)
            decided = rng.random() < 0.3
            yield "insights", g.id("insights"), {
                **scope, "kind": kind, "title": title, "body": body,
                "priority": rng.randint(1, 3),
                "status": rng.choice(["acted", "dismissed"]) if decided else "open",
                "decided_by": lead.get("owner_id") if decided else None,
                "decided_at": (when + timedelta(days=2)).isoformat() if decided else None,
                "created_at": (when + timedelta(hours=1)).isoformat()}
