"""Event window conditions: the window edge, future events, measures, where filters, deadlines, explain."""

from __future__ import annotations

from typing import Any

import pytest

from stream.rules import ANY_EVENT, EventCondition, Verdict, parse_condition
from stream.state.profile import Event, Profile, iso

NOW = 1_700_000_000_000
S, D = 1_000, 86_400_000


def profile(*events: tuple[int, str] | tuple[int, str, dict[str, Any]]) -> Profile:
    """A profile whose history holds ``(ts, name[, props])`` events, sorted as the worker keeps it."""
    history = [Event(e[0], e[1], e[2] if len(e) > 2 else {}) for e in events]  # type: ignore[misc]
    return Profile("c", history=sorted(history, key=lambda e: e.ts))


def event(**yaml: Any) -> EventCondition:
    condition = parse_condition(yaml)
    assert isinstance(condition, EventCondition)
    return condition


def views(*ts: int) -> Profile:
    return profile(*((t, "Product Viewed") for t in ts))


BROWSERS = {"event": "Product Viewed", "within": "7d", "count": {"gte": 3}}


def test_window_edge_event_at_now_minus_window_is_out_one_ms_later_is_in() -> None:
    condition = event(event="Product Viewed", within="10s")
    assert not condition.evaluate(views(NOW - 10 * S), NOW).holds
    assert condition.evaluate(views(NOW - 10 * S + 1), NOW).holds
    assert not condition.evaluate(views(NOW - 10 * S - 1), NOW).holds
    assert condition.evaluate(views(NOW), NOW).holds


def test_an_event_counts_from_its_time_and_leaves_exactly_window_later() -> None:
    condition = event(event="Product Viewed", within="10s")
    p = views(NOW)
    assert [condition.evaluate(p, NOW + dt).holds for dt in (-1, 0, 10 * S - 1, 10 * S)] == [False, True, True, False]
    assert condition.evaluate(p, NOW).deadline == NOW + 10 * S


def test_future_events_do_not_count_yet_and_their_time_is_the_deadline() -> None:
    condition = event(**BROWSERS)
    p = views(NOW - 1 * D, NOW - 2 * D, NOW + 5 * S)
    verdict = condition.evaluate(p, NOW)
    assert verdict == Verdict(False, "count(Product Viewed within 7d) = 2, not >= 3", NOW + 5 * S)
    later = condition.evaluate(p, NOW + 5 * S)
    assert later.holds and later.reason == "count(Product Viewed within 7d) = 3 >= 3"
    assert later.deadline == NOW - 2 * D + 7 * D


def test_count_holding_ends_when_the_nth_newest_event_leaves() -> None:
    p = views(NOW - 6 * D, NOW - 5 * D, NOW - 4 * D, NOW - 3 * D, NOW - 2 * D)
    verdict = event(**BROWSERS).evaluate(p, NOW)
    assert verdict.holds and verdict.reason == "count(Product Viewed within 7d) = 5 >= 3"
    assert verdict.deadline == NOW - 4 * D + 7 * D


def test_count_not_holding_without_future_events_has_no_deadline() -> None:
    assert event(**BROWSERS).evaluate(views(NOW - D), NOW).deadline is None
    assert event(**BROWSERS).evaluate(Profile("c"), NOW) == Verdict(False, "count(Product Viewed within 7d) = 0, not >= 3")


def test_count_at_most_starts_holding_when_enough_events_leave() -> None:
    condition = event(event="Product Viewed", within="7d", count={"lte": 1})
    verdict = condition.evaluate(views(NOW - 6 * D, NOW - 5 * D, NOW - 4 * D), NOW)
    assert not verdict.holds and verdict.deadline == NOW - 5 * D + 7 * D


def test_count_eq_skipped_over_by_simultaneous_departures_never_holds() -> None:
    condition = event(event="Product Viewed", within="7d", count={"eq": 1})
    assert condition.evaluate(views(NOW - D, NOW - D, NOW - D), NOW).deadline is None
    assert condition.evaluate(views(NOW - 2 * D, NOW - 2 * D, NOW - D), NOW).deadline == NOW - 2 * D + 7 * D


def test_count_between_and_gt() -> None:
    p = views(NOW - 3, NOW - 2, NOW - 1)
    assert event(event="Product Viewed", within="1s", count={"between": [2, 3]}).evaluate(p, NOW).holds
    assert not event(event="Product Viewed", within="1s", count={"gt": 3}).evaluate(p, NOW).holds
    assert event(event="Product Viewed", within="1s", count={"gt": 2.5}).evaluate(p, NOW).holds


def test_other_event_names_do_not_count_and_any_event_counts_everything() -> None:
    p = profile((NOW - 1, "Product Viewed"), (NOW - 2, "page", {"name": "Home"}), (NOW - 3, "Order Completed"))
    assert "$any" == ANY_EVENT
    assert event(event="Order Completed", within="1s", count={"eq": 1}).evaluate(p, NOW).holds
    verdict = event(event=ANY_EVENT, within="1s", count={"eq": 3}).evaluate(p, NOW)
    assert verdict.holds and verdict.reason == "count(any event within 1s) = 3 == 3"


ORDERS = profile(
    (NOW - 3 * D, "Order Completed", {"revenue": 150, "currency": "USD"}),
    (NOW - 2 * D, "Order Completed", {"revenue": "60.5", "currency": "USD"}),
    (NOW - 1 * D, "Order Completed", {"revenue": 500, "currency": "EUR"}),
    (NOW - 1 * D, "Order Completed", {"revenue": 0, "currency": "USD"}),
    (NOW - 1 * D, "Order Completed", {"currency": "USD"}),
)


def test_where_filters_events_with_the_trait_operators() -> None:
    condition = event(
        event="Order Completed", within="30d", where={"currency": {"eq": "USD"}, "revenue": {"gt": 0}}, sum={"of": "revenue", "gte": 200}
    )
    verdict = condition.evaluate(ORDERS, NOW)
    assert verdict.holds
    assert verdict.reason == 'sum(revenue of Order Completed where currency == "USD" and revenue > 0 within 30d) = 210.5 >= 200'
    assert verdict.deadline == NOW - 3 * D + 30 * D
    assert condition.properties() == {"currency", "revenue"}


@pytest.mark.parametrize(
    ("measure", "value", "holds"),
    [
        ({"sum": {"of": "revenue", "eq": 710.5}}, "710.5", True),
        ({"min": {"of": "revenue", "lt": 1}}, "0", True),
        ({"max": {"of": "revenue", "gte": 500}}, "500", True),
        ({"distinct": {"of": "currency", "eq": 2}}, "2", True),
        ({"distinct": {"of": "revenue", "gte": 5}}, "4", False),
        ({"min": {"of": "missing", "gte": 0}}, "none", False),
        ({"sum": {"of": "missing", "eq": 0}}, "0", True),
        ({"count": {"eq": 5}}, "5", True),
    ],
)
def test_measures(measure: dict[str, Any], value: str, holds: bool) -> None:
    verdict = event(event="Order Completed", within="30d", **measure).evaluate(ORDERS, NOW)
    assert verdict.holds is holds
    assert f") = {value}" in verdict.reason


def test_sum_is_exact_for_floats() -> None:
    p = profile(*((NOW - i, "Tip", {"value": 0.1}) for i in range(1, 11)))
    verdict = event(event="Tip", within="1s", sum={"of": "value", "eq": 1}).evaluate(p, NOW)
    assert sum([0.1] * 10) != 1.0, "adding one by one rounds"
    assert verdict.holds and verdict.reason == "sum(value of Tip within 1s) = 1.0 == 1"


def test_sum_deadline_when_the_big_order_leaves_and_max_deadline() -> None:
    big = event(event="Order Completed", within="30d", sum={"of": "revenue", "gte": 600})
    assert big.evaluate(ORDERS, NOW).deadline == NOW - 3 * D + 30 * D, "710.5 - 150 < 600"
    top = event(event="Order Completed", within="30d", max={"of": "revenue", "lt": 200})
    verdict = top.evaluate(ORDERS, NOW)
    assert not verdict.holds and verdict.deadline is None, "500 leaves with 0 at the same time; nothing is left"
    small = event(event="Order Completed", within="30d", where={"currency": {"eq": "USD"}}, max={"of": "revenue", "lt": 100})
    assert small.evaluate(ORDERS, NOW).deadline == NOW - 3 * D + 30 * D


def test_explain_lists_the_matched_events_and_the_rule_as_written() -> None:
    condition = event(**BROWSERS)
    p = views(*(NOW - i * S for i in range(60)), NOW + S)
    tree = condition.explain(p, NOW)
    assert tree["kind"] == "event" and tree["holds"] is True and tree["matched"] == 60
    assert tree["rule"] == {"event": "Product Viewed", "within": "7d", "count": {"gte": 3}}
    assert tree["deadline"] == iso(NOW - S + 7 * D), "the future view keeps the count at 3 until NOW - 1s leaves"
    assert len(tree["events"]) == 50 and tree["events"][-1] == {"at": iso(NOW), "event": "Product Viewed", "properties": {}}


def test_state_it_needs() -> None:
    condition = event(event="Product Viewed", within="1h30m", distinct={"of": "product_id", "gte": 3})
    assert condition.lookback_ms() == 5_400_000
    assert condition.properties() == {"product_id"}
    assert condition.event_names() == {"Product Viewed"}
