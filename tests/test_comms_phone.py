"""Phone numbers normalise to one E.164 form, from what people type and what providers send."""

from __future__ import annotations

import pytest

from comms.phone import normalise

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("raw", "expected"), [
    ("+91 98765 43210", "+919876543210"),
    ("+91-98765-43210", "+919876543210"),
    ("(+91) 98765.43210", "+919876543210"),
    ("0091 98765 43210", "+919876543210"),
    ("098765 43210", "+919876543210"),       # trunk 0, national
    ("98765 43210", "+919876543210"),        # national, the default country
    ("919876543210", "+919876543210"),       # international without the +
    ("919876543210@c.us", "+919876543210"),  # WAHA chat id
    ("971501234567@s.whatsapp.net", "+971501234567"),  # Evolution remoteJid, another country
    ("+44 20 7946 0958", "+442079460958"),
    ("+1 (415) 555-0100", "+14155550100"),
])
def test_common_notations_normalise_to_one_form(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("raw", [
    None, "", "   ", "call me", "+", "+0 123 4567", "12345",  # too short
    "+1234567890123456",                                     # 16 digits: beyond E.164
    "120363025246125486@g.us",                               # a group chat, not a person
    "status@broadcast", "abc@c.us",
])
def test_what_is_not_a_phone_number_is_none(raw: str | None) -> None:
    assert normalise(raw) is None


def test_another_default_country_applies_to_national_numbers_only() -> None:
    assert normalise("050 123 4567", "971") == "+971501234567"
    assert normalise("+91 98765 43210", "971") == "+919876543210"
