"""Positions in an ordered list: digit strings that sort between any two others.

Fractional indexing (Greenspan, "Implementing Fractional Indexing"): a position is the fraction
``0.<digits>`` in base 62, compared as a plain string, never ending in ``0``. Each position ends
in a suffix taken from the writing replica's client id, so two replicas that place an element in
the same gap at the same time never produce the same position.
"""

from __future__ import annotations

import re

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE = len(DIGITS)
_VALUE = {d: i for i, d in enumerate(DIGITS)}
_POSITION = re.compile(r"[0-9A-Za-z]*[1-9A-Za-z]")


def salt_of(client_id: int) -> str:
    """The suffix a replica gives its positions: its client id in base 62, lowest digit first
    (so it never ends in ``0``, the invariant every position keeps)."""
    out = []
    while True:
        client_id, digit = divmod(client_id, _BASE)
        out.append(DIGITS[digit])
        if not client_id:
            break
    salt = "".join(out)
    return salt if not salt.endswith("0") else salt + "1"


def is_position(value: object) -> bool:
    """A well-formed position: base-62 digits, not empty, not ending in ``0``."""
    return isinstance(value, str) and _POSITION.fullmatch(value) is not None


def between(before: str | None, after: str | None, salt: str) -> str:
    """A position strictly between ``before`` and ``after`` (None: the start or end of the list),
    ending in ``salt``; raises ValueError unless ``before < after``."""
    low = before or ""
    if after is not None and not low < after:
        raise ValueError(f"no position between {before!r} and {after!r}")
    mid = _midpoint(low, after)
    while after is not None and after.startswith(mid):
        # a prefix of ``after`` followed by the salt could sort past it: go one level deeper
        mid += _midpoint("", after[len(mid):])
    return mid + salt


def _midpoint(low: str, high: str | None) -> str:
    """Digits strictly between the fractions 0.low and 0.high (None: 1)."""
    if high is not None:
        n = 0
        while n < len(high) and (low[n] if n < len(low) else "0") == high[n]:
            n += 1
        if n:
            return high[:n] + _midpoint(low[n:], high[n:])
    lo = _VALUE[low[0]] if low else 0
    hi = _VALUE[high[0]] if high is not None else _BASE
    if hi - lo > 1:
        return DIGITS[(lo + hi + 1) // 2]
    if high is not None and len(high) > 1:
        return high[0]
    return DIGITS[lo] + _midpoint(low[1:], None)
