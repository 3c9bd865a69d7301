"""Durations as operators write them."""

from __future__ import annotations

import pytest

from wire.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (2.5, 2.5),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        (" 10s ", 10.0),
        ("1.5h", 5400.0),
        (0, 0.0),
    ],
)
def test_valid_durations(text: object, seconds: float) -> None:
    """Numbers are seconds; suffixes ms/s/m/h/d scale."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", [True, -1, "5 minutes", "5x", "", "m", None, float("inf"), float("nan"), [], "-5s"]
)
def test_invalid_durations_are_none(bad: object) -> None:
    """Anything else is refused (None), including booleans and negatives."""
    assert parse_duration(bad) is None


@pytest.mark.parametrize("seconds", [0.25, 1.5, 30, 300, 3600, 86400, 90])
def test_format_round_trips(seconds: float) -> None:
    """format_duration gives a form parse_duration reads back exactly."""
    assert parse_duration(format_duration(seconds)) == seconds
