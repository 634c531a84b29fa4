"""Phone numbers in one form (E.164-ish) so a WhatsApp chat id and a CRM phone field match."""

from __future__ import annotations

import re

__all__ = ["DEFAULT_COUNTRY_CODE", "normalise", "to_chat_digits"]

DEFAULT_COUNTRY_CODE = "91"
"""The country assumed for a number written without one (the brokers' market)."""
MIN_NATIONAL_DIGITS = 6
"""Shorter digit strings are extensions or typos, not numbers to message."""
_JID_SUFFIX = re.compile(r"@(c\.us|s\.whatsapp\.net|lid)$")
_SEPARATORS = re.compile(r"[\s().\-/]")


def normalise(raw: str | None, country_code: str = DEFAULT_COUNTRY_CODE) -> str | None:
    """``raw`` as ``+<country><number>`` (7 to 15 digits), or None when it is not a phone number.

    Accepts what people and providers write: ``+91 98765-43210``, ``0091 98765 43210``,
    ``098765 43210`` (a trunk 0, national), ``9876543210`` (national, this country),
    ``919876543210@c.us`` (WAHA), ``919876543210@s.whatsapp.net`` (Evolution). A chat id
    always carries its country code; a bare national number gets ``country_code``.
    """
    if raw is None:
        return None
    text = raw.strip()
    if "@" in text:
        text, n = _JID_SUFFIX.subn("", text)
        if not n or not text.isdigit():
            return None  # a group or broadcast chat id, not a person's number
        return _checked(text)
    text = _SEPARATORS.sub("", text)
    if text.startswith("+"):
        return _checked(text[1:])
    if text.startswith("00"):
        return _checked(text[2:])
    if not text.isdigit():
        return None
    if text.startswith(country_code) and len(text) > 10:
        return _checked(text)  # already international, written without the +
    national = text.lstrip("0")
    if len(national) < MIN_NATIONAL_DIGITS:
        return None
    return _checked(country_code + national)


def _checked(digits: str) -> str | None:
    if not digits.isdigit() or digits.startswith("0") or not 7 <= len(digits) <= 15:
        return None
    return "+" + digits


def to_chat_digits(phone: str) -> str:
    """The digits providers address a chat by (``+919876543210`` → ``919876543210``)."""
    return phone.removeprefix("+")
