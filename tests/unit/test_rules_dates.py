"""Relative dates on traits and computed traits: edges, exact deadlines, date formats, unparseable values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stream.rules import RelativeDate, Verdict, parse_condition
from stream.rules.dates import as_date
from stream.state.profile import Profile, parse_time

D = 86_400_000
SIGNUP = parse_time("2024-01-01T00:00:00Z")


def verdict(condition: dict[str, Any], now: int, **profile: Any) -> Verdict:
    return parse_condition(condition).evaluate(Profile("c", **profile), now)


def signed_up(now: int, value: Any = "2024-01-01", **test: Any) -> Verdict:
    return verdict({"trait": "signed_up_at", **test}, now, traits={"signed_up_at": value})


def test_older_than_holds_from_the_moment_the_date_is_that_old() -> None:
    before = signed_up(SIGNUP + 90 * D - 1, older_than="90d")
    assert before == Verdict(False, 'trait signed_up_at = "2024-01-01" (89d23h59m59s999ms ago), not older than 90d', SIGNUP + 90 * D)
    at = signed_up(SIGNUP + 90 * D, older_than="90d")
    assert at == Verdict(True, 'trait signed_up_at = "2024-01-01" (90d ago), older than 90d', None)
    assert signed_up(SIGNUP + 90 * D + 1, older_than="90d").holds


def test_newer_than_holds_until_the_date_is_that_old() -> None:
    assert signed_up(SIGNUP + 7 * D - 1, newer_than="7d") == Verdict(
        True, 'trait signed_up_at = "2024-01-01" (6d23h59m59s999ms ago), newer than 7d', SIGNUP + 7 * D
    )
    assert signed_up(SIGNUP + 7 * D, newer_than="7d") == Verdict(False, 'trait signed_up_at = "2024-01-01" (7d ago), not newer than 7d')
    future = signed_up(SIGNUP - D, newer_than="7d")
    assert future.holds and future.reason.startswith('trait signed_up_at = "2024-01-01" (in 1d)') and future.deadline == SIGNUP + 7 * D


def test_both_bounds_hold_between_them() -> None:
    test = {"older_than": "7d", "newer_than": "30d"}
    assert signed_up(SIGNUP + D, **test).deadline == SIGNUP + 7 * D
    assert signed_up(SIGNUP + 7 * D, **test) == Verdict(
        True, 'trait signed_up_at = "2024-01-01" (7d ago), older than 7d and newer than 30d', SIGNUP + 30 * D
    )
    assert signed_up(SIGNUP + 30 * D, **test).deadline is None


@pytest.mark.parametrize(
    "value",
    ["2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T01:00:00+01:00", SIGNUP // 1000, SIGNUP, SIGNUP / 1000],
)
def test_iso_strings_and_epoch_seconds_or_ms_are_dates(value: Any) -> None:
    assert as_date(value) == SIGNUP
    assert signed_up(SIGNUP + 90 * D, value, older_than="90d").holds


@pytest.mark.parametrize("value", ["soon", "", "2024-13-01", True, [2024], {"y": 2024}, float("nan"), float("inf"), 1e300])
def test_unparseable_dates_are_false_with_a_reason(value: Any) -> None:
    result = signed_up(SIGNUP, value, older_than="1d")
    assert not result.holds and result.deadline is None
    assert result.reason.endswith("is not a date (expected ISO 8601 or epoch seconds/ms)")
    assert not signed_up(SIGNUP, value, newer_than="1d").holds


def test_missing_trait_and_dotted_path() -> None:
    assert verdict({"trait": "signed_up_at", "older_than": "1d"}, SIGNUP) == Verdict(False, "trait signed_up_at missing")
    moved = verdict({"trait": "address.moved_at", "newer_than": "30d"}, SIGNUP + D, traits={"address": {"moved_at": "2024-01-01"}})
    assert moved.holds and moved.deadline == SIGNUP + 30 * D


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ({"newer_than": None}, "give older_than, newer_than or both"),
        ({"older_than": "30d", "newer_than": "7d"}, r"newer_than \(7d\) must be longer than older_than \(30d\)"),
        ({"older_than": "ninety days"}, "expected a duration like '24h'"),
        ({"older_than": "1d", "eq": 1}, "unknown key 'eq'"),
    ],
)
def test_invalid_relative_dates(test: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_condition({"trait": "signed_up_at", **test})


def test_kind_and_state() -> None:
    condition = parse_condition({"trait": "$last_seen", "older_than": "30d"})
    assert isinstance(condition, RelativeDate) and condition.kind == "relative_date"
    assert condition.lookback_ms() == 0 and condition.event_names() == {"$any"} and condition.properties() == set()


# Computed traits


def test_last_seen_older_than_enters_exactly_30_days_after_the_last_event() -> None:
    dormant = {"trait": "$last_seen", "older_than": "30d"}
    assert verdict(dormant, SIGNUP + D, last_seen=SIGNUP).deadline == SIGNUP + 30 * D
    assert verdict(dormant, SIGNUP + 30 * D, last_seen=SIGNUP).holds
    assert verdict(dormant, SIGNUP, last_seen=None) == Verdict(False, "trait $last_seen missing")
    assert verdict({"trait": "$first_seen", "older_than": "1s"}, 1_000, first_seen=0).holds, "small ms are ms, not seconds"


@pytest.mark.parametrize(
    ("condition", "profile", "reason"),
    [
        ({"trait": "$revenue", "gte": 200}, {"revenue": 250.5}, "trait $revenue = 250.5 >= 200"),
        ({"trait": "$count.Order Completed", "gte": 3}, {"counts": {"Order Completed": 3}}, "trait $count.Order Completed = 3 >= 3"),
        ({"trait": "$count.Order Completed", "eq": 0}, {}, "trait $count.Order Completed = 0 == 0"),
        ({"trait": "$count.v2.Signed Up", "eq": 1}, {"counts": {"v2.Signed Up": 1}}, "trait $count.v2.Signed Up = 1 == 1"),
        ({"trait": "$first_seen", "lt": 5}, {"first_seen": 4}, "trait $first_seen = 4 < 5"),
    ],
)
def test_computed_traits_read_profile_facts(condition: dict[str, Any], profile: dict[str, Any], reason: str) -> None:
    assert verdict(condition, 0, traits={"revenue": 1}, **profile) == Verdict(True, reason)


@pytest.mark.parametrize("name", ["$revnue", "$count.", "$"])
def test_unknown_computed_traits_list_the_known_ones(name: str) -> None:
    with pytest.raises(ValidationError, match=r"unknown computed trait .*; use one of \$revenue, \$first_seen, \$last_seen, \$count.<Event Name>"):
        parse_condition({"trait": name, "exists": True})
