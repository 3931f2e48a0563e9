"""Durations in rule files: parsing to milliseconds, formatting back, errors."""

from __future__ import annotations

import pytest

from stream.rules import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("15m", 900_000),
        ("24h", 86_400_000),
        ("7d", 604_800_000),
        ("2w", 1_209_600_000),
        ("1h30m", 5_400_000),
        ("1m5s", 65_000),
        ("1s500ms", 1_500),
        (" 7d ", 604_800_000),
        (30, 30_000),
        ("30", 30_000),
    ],
)
def test_parses_to_milliseconds(text: str | int, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", ["24 hours", "7days", "1.5h", "h", "", "-5m", "1h1h", "1M", 1.5, True, None, [1]])
def test_bad_durations_say_what_a_duration_looks_like(bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected a duration like '24h', got"):
        parse_duration(bad)


@pytest.mark.parametrize("zero", [0, "0s", "0", -3])
def test_a_duration_must_be_longer_than_zero(zero: object) -> None:
    with pytest.raises(ValueError, match="longer than 0"):
        parse_duration(zero)


@pytest.mark.parametrize(
    ("ms", "text"), [(604_800_000, "7d"), (5_400_000, "1h30m"), (500, "500ms"), (30_000, "30s"), (90_061_001, "1d1h1m1s1ms")]
)
def test_formats_in_days_hours_minutes_seconds(ms: int, text: str) -> None:
    assert format_duration(ms) == text
    assert parse_duration(text) == ms


def test_a_duration_is_at_most_a_hundred_years() -> None:
    assert parse_duration("5218w") == 5218 * 604_800_000
    with pytest.raises(ValueError, match="at most 100 years"):
        parse_duration("99999999999999999999999w")
