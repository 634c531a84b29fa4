"""WhatsApp conversations for the synthetic CRM: about a third of the clients with a phone have
one with their broker, on the channel ``whatsapp-main``, a few messages each way (delivered and
read, now and then a voice note by reference)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from comms.phone import normalise
from core.ids import deterministic_id

CHANNEL_ID = "whatsapp-main"
"""The channel the seeded conversations are on; an admin configures it to send."""
OPENERS = ["Hi {first}, this is {broker} from the sales team. Sharing the {project} brochure.",
           "Good morning {first}! As promised, the price sheet for the {config}.",
           "Hello {first}, following up on your visit to {project} on Sunday."]
REPLIES = ["Thanks, will go through it tonight.", "Can you share the floor plan as well?",
           "Is there any offer running this month?", "We liked it. My father wants to visit too.",
           "What is the possession date?", "Please call after 6, in meetings all day."]
FOLLOW_UPS = ["Sure, sending the floor plan now.", "Yes, festive offer till the 30th: 2% off.",
              "Possession is December 2027, RERA registered.", "Noted, I'll call you at 6:30.",
              "Happy to host your father, Saturday 11am?"]
PROJECTS = ["Aurelia Towers", "The Crest", "Palm Vista", "Skyline One"]
CONFIGS = ["3BHK", "4BHK", "Penthouse", "2BHK"]


def conversations(tenant_id: str, seed: int,
                  records: list[tuple[str, str, dict[str, Any]]]
                  ) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Threads and messages for some of ``records``' people (deterministic for the seed)."""
    rng = random.Random(f"comms/{seed}")
    ns = f"velocity-seed/{tenant_id}/{seed}/comms"
    counters = {"comms_threads": 0, "comms_messages": 0}

    def next_id(coll: str) -> str:
        counters[coll] += 1
        return deterministic_id(ns, f"{coll}:{counters[coll]}")

    for coll, person_id, person in records:
        phone = normalise(person.get("primary_phone")) if coll == "people" else None
        if phone is None or rng.random() > 0.35:
            continue
        thread_id = next_id("comms_threads")
        scope = {"tenant_id": tenant_id, "owner_id": person.get("owner_id"),
                 "team_id": person.get("team_id")}
        start = datetime.fromisoformat(person["created_at"]) + timedelta(days=rng.randint(1, 20))
        yield "comms_threads", thread_id, {
            **scope, "channel_id": CHANNEL_ID, "phone": phone, "person_id": person_id,
            "display_name": person["full_name"], "created_at": start.isoformat()}
        first = person["full_name"].split()[0]
        words = {"first": first, "broker": "your advisor", "project": rng.choice(PROJECTS),
                 "config": rng.choice(CONFIGS)}
        at = start
        script = [("outbound", rng.choice(OPENERS).format(**words))]
        for _ in range(rng.randint(1, 3)):
            script += [("inbound", rng.choice(REPLIES)), ("outbound", rng.choice(FOLLOW_UPS))]
        for n, (direction, body) in enumerate(script):
            at += timedelta(minutes=rng.randint(3, 600))
            message_id = next_id("comms_messages")
            voice = direction == "inbound" and rng.random() < 0.15
            yield "comms_messages", message_id, {
                **scope, "thread_id": thread_id, "direction": direction,
                "body": "" if voice else body,
                "media_url": f"https://media.example/voice/{message_id}.oga" if voice else None,
                "media_type": "audio/ogg; codecs=opus" if voice else None,
                "media_seconds": rng.randint(4, 90) if voice else None,
                "status": "received" if direction == "inbound" else (
                    "read" if n < len(script) - 1 else rng.choice(["delivered", "read"])),
                "provider_message_id": f"{direction == 'outbound'}_{phone[1:]}@c.us_"
                                       f"{message_id[-12:].upper()}".lower(),
                "author_id": person.get("owner_id") if direction == "outbound" else None,
                "occurred_at": at.isoformat(), "created_at": at.isoformat()}
