"""The providers read every documented shape of their webhooks and answers, and refuse others."""

from __future__ import annotations

import httpx
import pytest

from comms.evolution import Evolution
from comms.providers import Channel, InboundMessage, StatusReport, WebhookInvalid
from comms.waha import Waha, _message_id, sign

CHANNEL = Channel("c", "t1", "waha", "default", "http://127.0.0.1:9", "k", "secret-key", "u")


def _waha() -> Waha:
    return Waha(CHANNEL, httpx.AsyncClient())


def _evolution() -> Evolution:
    return Evolution(CHANNEL, httpx.AsyncClient())


def test_waha_send_answers_name_the_message_in_every_engine_shape() -> None:
    assert _message_id({"id": "true_91@c.us_AB"}) == "true_91@c.us_AB"  # string id
    assert _message_id({"id": {"_serialized": "true_91@c.us_CD", "id": "CD"}}) == \
        "true_91@c.us_CD"  # WEBJS
    assert _message_id({"key": {"remoteJid": "91@s.whatsapp.net", "id": "EF"}}) == "EF"  # NOWEB
    assert _message_id({"status": "ok"}) is None and _message_id([1]) is None


def test_waha_signature_covers_the_exact_body() -> None:
    waha, body = _waha(), b'{"event":"message"}'
    good = {"x-webhook-hmac": sign("secret-key", body), "x-webhook-hmac-algorithm": "sha512"}
    assert waha.verify(good, body)
    assert not waha.verify(good, body + b" ")
    assert not waha.verify({**good, "x-webhook-hmac-algorithm": "sha1"}, body)
    assert not waha.verify({}, body)


def test_waha_events() -> None:
    waha = _waha()
    inbound = waha.parse({"event": "message", "session": "default", "payload": {
        "id": "false_919876543210@c.us_AA", "timestamp": 1_780_000_000,
        "from": "919876543210@c.us", "fromMe": False, "body": "hi", "hasMedia": True,
        "media": {"url": "http://waha/f.oga", "mimetype": "audio/ogg"},
        "_data": {"notifyName": "Zara"}}})
    assert inbound == [InboundMessage("false_919876543210@c.us_AA", "919876543210@c.us", "hi",
                                      inbound[0].occurred_at, "Zara", "http://waha/f.oga",
                                      "audio/ogg")]
    own = waha.parse({"event": "message", "session": "default", "payload": {
        "id": "true_x", "timestamp": 1, "from": "919876543210@c.us", "fromMe": True}})
    assert own == []
    acks = [waha.parse({"event": "message.ack", "session": "default",
                        "payload": {"id": "true_x", "ack": n}}) for n in (-1, 0, 1, 2, 3, 4)]
    assert acks == [[StatusReport("true_x", s)] for s in ("failed",)] + [[]] + [
        [StatusReport("true_x", s)] for s in ("sent", "delivered", "read", "read")]
    with pytest.raises(WebhookInvalid):
        waha.parse({"event": "message.ack", "session": "default",
                    "payload": {"id": "true_x", "ack": 9}})


def test_evolution_events() -> None:
    evo = _evolution()
    key = {"remoteJid": "971501234567@s.whatsapp.net", "fromMe": False, "id": "3EB0"}
    texts = [{"conversation": "a"}, {"extendedTextMessage": {"text": "b"}},
             {"imageMessage": {"url": "u", "mimetype": "image/jpeg", "caption": "c"}},
             {"audioMessage": {"url": "v", "mimetype": "audio/ogg", "seconds": 12}},
             {"audioMessage": {"url": "v", "seconds": 10**9}}]
    got = [evo.parse({"event": "MESSAGES_UPSERT", "instance": "i", "data": [
        {"key": key, "message": m, "messageTimestamp": 1_780_000_000}]})[0] for m in texts]
    assert [(e.body, e.media_url, e.media_seconds) for e in got if isinstance(
        e, InboundMessage)] == [("a", None, None), ("b", None, None), ("c", "u", None),
                                ("", "v", 12), ("", "v", None)]
    updates = evo.parse({"event": "messages.update", "instance": "i", "data": [
        {"keyId": "BAE5", "status": "DELIVERY_ACK"},
        {"key": {**key, "id": "BAE6", "fromMe": True}, "status": "READ"},
        {"keyId": "BAE7", "status": "PENDING"}]})
    assert updates == [StatusReport("BAE5", "delivered"), StatusReport("BAE6", "read")]
    assert evo.parse({"event": "connection.update", "instance": "i", "data": {}}) == []
    with pytest.raises(WebhookInvalid):
        evo.parse({"event": "messages.upsert", "instance": "i", "data": {"key": key}})
    assert evo.verify({"authorization": "Bearer secret-key"}, b"")
    assert not evo.verify({"authorization": "Bearer secret-ke"}, b"")
