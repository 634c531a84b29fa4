"""The seeded conversations: on their client's phone, in their client's scope, in order."""

from __future__ import annotations

from comms.phone import normalise
from schema import collection, project
from seeds.generator import generate


def test_seeded_conversations_belong_to_their_clients() -> None:
    data = generate("acme", people=120, seed=4)
    people = {rid: v for c, rid, v in data.records if c == "people"}
    threads = {rid: v for c, rid, v in data.records if c == "comms_threads"}
    messages = [(rid, v) for c, rid, v in data.records if c == "comms_messages"]
    assert threads and len(messages) >= 3 * len(threads)
    for thread in threads.values():
        person = people[thread["person_id"]]
        assert normalise(person["primary_phone"]) == thread["phone"]
        assert thread["owner_id"] == person["owner_id"]
    for rid, values in messages:
        message = project(collection("comms_messages"), rid, values)
        assert message.thread_id in threads and message.owner_id == threads[
            message.thread_id]["owner_id"]
        assert (message.status == "received") == (message.direction == "inbound")
    assert any(v["media_url"] for _, v in messages)  # voice notes, by reference
