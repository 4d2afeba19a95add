"""The strict JSON parser shared by the stand-in and the receiver (its doctests teach the rule)."""

from __future__ import annotations

import doctest

import pytest

from daily_sip import strict_json


def test_doctests_hold():
    assert doctest.testmod(strict_json).failed == 0


@pytest.mark.parametrize(
    "raw",
    [b"NaN", b"[Infinity]", b"-Infinity", b"1e400", b"[" * 5000 + b"]" * 5000, b"1" * 5000, b"\xff", b"{"],
)
def test_refused_with_a_value_error(raw: bytes):
    with pytest.raises(strict_json.InvalidJSON):
        strict_json.loads(raw)


def test_what_it_accepts_writes_back_out():
    import json

    raw = b'{"a": [' + b"[" * 60 + b"]" * 60 + b', 1e308, -12345678901234567890, "\\u00e9"]}'
    value = strict_json.loads(raw)
    assert json.loads(json.dumps(value, allow_nan=False)) == value
