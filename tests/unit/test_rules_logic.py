"""all / any / not: combined verdicts, reasons and deadlines, nested explanations."""

from __future__ import annotations

from typing import Any

from stream.rules import AllOf, Verdict, parse_condition
from stream.rules.model import ConditionModel
from stream.state.profile import Event, Profile, iso

NOW = 1_000_000
AGE = {"trait": "age", "between": [25, 34]}
CITY = {"trait": "city", "eq": "New York"}
VIEWED = {"event": "View", "within": "10s"}  # one view at NOW - 4s: holds until NOW + 6s
BOUGHT = {"event": "Buy", "within": "10s"}  # one purchase at NOW - 8s: holds until NOW + 2s
PROFILE = Profile(
    "c",
    traits={"age": 29, "city": "Boston"},
    history=[Event(NOW - 8_000, "Buy"), Event(NOW - 4_000, "View")],
)


def verdict(condition: dict[str, Any], profile: Profile = PROFILE, now: int = NOW) -> Verdict:
    return parse_condition(condition).evaluate(profile, now)


def test_all_that_holds_joins_reasons_and_ends_at_the_earliest_deadline() -> None:
    v = verdict({"all": [AGE, VIEWED, BOUGHT]})
    assert v.holds
    assert v.reason == "trait age = 29 between [25, 34] and count(View within 10s) = 1 >= 1 and count(Buy within 10s) = 1 >= 1"
    assert v.deadline == NOW + 2_000


def test_all_that_fails_gives_the_first_failing_reason() -> None:
    v = verdict({"all": [AGE, CITY, VIEWED]})
    assert v == Verdict(False, 'trait city = "Boston", not == "New York"', None)


def test_failing_all_lasts_until_every_failing_child_could_hold() -> None:
    soon = {"not": VIEWED}  # fails until NOW + 6s
    later = {"not": BOUGHT}  # fails until NOW + 2s
    assert verdict({"all": [soon, later, AGE]}).deadline == NOW + 6_000
    assert verdict({"all": [soon, CITY]}).deadline is None, "the city fails until a new event"


def test_any_that_holds_gives_the_first_holding_reason_and_the_latest_of_their_deadlines() -> None:
    v = verdict({"any": [CITY, BOUGHT, VIEWED]})
    assert v == Verdict(True, "count(Buy within 10s) = 1 >= 1", NOW + 6_000)
    assert verdict({"any": [BOUGHT, AGE]}).deadline is None, "the age holds until a new event"


def test_any_that_fails_lists_every_reason_and_ends_at_the_earliest_deadline() -> None:
    v = verdict({"any": [CITY, {"not": VIEWED}, {"not": BOUGHT}]})
    assert not v.holds and v.deadline == NOW + 2_000
    assert v.reason == (
        'none of: trait city = "Boston", not == "New York"; '
        "not (count(View within 10s) = 1 >= 1); not (count(Buy within 10s) = 1 >= 1)"
    )


def test_not_negates_and_keeps_the_deadline() -> None:
    assert verdict({"not": BOUGHT}) == Verdict(False, "not (count(Buy within 10s) = 1 >= 1)", NOW + 2_000)
    assert verdict({"not": {"not": CITY}}) == Verdict(False, 'not (not (trait city = "Boston", not == "New York"))')


def test_combined_verdicts_hold_until_their_deadline() -> None:
    condition = parse_condition({"any": [{"all": [VIEWED, {"not": BOUGHT}]}, {"all": [AGE, BOUGHT]}]})
    first = condition.evaluate(PROFILE, NOW)
    assert first.holds and first.deadline == NOW + 2_000
    assert all(condition.evaluate(PROFILE, t).holds for t in range(NOW, first.deadline, 250))
    second = condition.evaluate(PROFILE, first.deadline)
    assert second.holds and second.reason == "count(View within 10s) = 1 >= 1 and not (count(Buy within 10s) = 0, not >= 1)"
    assert second.deadline == NOW + 6_000 and not condition.evaluate(PROFILE, second.deadline).holds


def test_explain_is_the_whole_tree() -> None:
    condition = parse_condition({"all": [AGE, {"not": BOUGHT}]})
    tree = condition.explain(PROFILE, NOW)
    assert tree["kind"] == "all" and tree["holds"] is False and tree["deadline"] == iso(NOW + 2_000)
    age, negated = tree["children"]
    assert age == {
        "kind": "trait",
        "holds": True,
        "reason": "trait age = 29 between [25, 34]",
        "deadline": None,
        "rule": {"trait": "age", "between": [25, 34]},
    }
    assert negated["kind"] == "not" and negated["reason"] == "not (count(Buy within 10s) = 1 >= 1)"
    bought = negated["children"][0]
    assert bought["rule"] == BOUGHT and bought["matched"] == 1 and bought["events"][0]["at"] == iso(NOW - 8_000)


def test_state_the_subtree_needs() -> None:
    condition = parse_condition(
        {"any": [AGE, {"not": {"event": "Buy", "within": "30d", "where": {"currency": {"eq": "USD"}}}}, {"all": [VIEWED]}]}
    )
    assert isinstance(condition, ConditionModel) and not isinstance(condition, AllOf)
    assert condition.lookback_ms() == 30 * 86_400_000
    assert condition.properties() == {"currency"}
    assert condition.event_names() == {"Buy", "View"}
    assert parse_condition(AGE).lookback_ms() == 0 and parse_condition(AGE).event_names() == set()


def test_reasons_are_written_only_when_read() -> None:
    calls: list[int] = []

    def why(n: int) -> str:
        calls.append(n)
        return f"reason {n}"

    v = Verdict(True, why, 5, 1)
    assert calls == [] and v.holds and v.deadline == 5
    assert v.reason == "reason 1" and v.reason == "reason 1" and calls == [1], "written once"
    assert v == Verdict(True, "reason 1", 5) and v.restated(False, None) == Verdict(False, "reason 1")
    condition = parse_condition({"any": [CITY, {"not": VIEWED}]})
    combined = condition.evaluate(PROFILE, NOW)
    assert combined.reason == 'none of: trait city = "Boston", not == "New York"; not (count(View within 10s) = 1 >= 1)'
