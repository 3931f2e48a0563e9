"""Property tests: event-window verdicts and deadlines against a brute-force oracle over the history list."""

from __future__ import annotations

import math
import operator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.rules import ANY_EVENT, parse_condition
from stream.state.profile import Event, Profile

COMPARE = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le, "eq": operator.eq}

values = st.one_of(
    st.none(),
    st.integers(-3, 6),
    st.sampled_from([0.1, 0.2, 0.5, 1.5, -0.3, 2.25]),
    st.sampled_from(["2", "0.5", "x", "-1"]),
    st.booleans(),
)
events = st.lists(
    st.builds(
        lambda ts, name, v, k: Event(ts, name, {key: val for key, val in (("v", v), ("k", k)) if val is not None}),
        st.integers(0, 60),
        st.sampled_from(["A", "B"]),
        values,
        st.sampled_from([None, "x", "y", "z"]),
    ),
    max_size=12,
).map(lambda es: sorted(es, key=lambda e: e.ts))
comparisons = st.one_of(
    st.builds(lambda op, x: {op: x}, st.sampled_from(sorted(COMPARE)), st.sampled_from([-1, 0, 0.5, 1, 2, 2.5, 3, 4])),
    st.builds(lambda a, b: {"between": [min(a, b), max(a, b)]}, st.integers(-1, 4), st.integers(-1, 4)),
)
measures = st.one_of(
    st.just({}),
    st.builds(lambda c: {"count": c}, comparisons),
    st.builds(lambda m, c: {m: {"of": "v", **c}}, st.sampled_from(["sum", "min", "max"]), comparisons),
    st.builds(lambda c: {"distinct": {"of": "k", **c}}, comparisons),
)
conditions = st.builds(
    lambda name, window, where, measure: {"event": name, "within": f"{window}ms", **where, **measure},
    st.sampled_from(["A", ANY_EVENT]),
    st.integers(1, 25),
    st.sampled_from([{}, {"where": {"k": {"in": ["x", "y"]}}}]),
    measures,
)


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def brute_force(rule: dict[str, Any], history: list[Event], t: int) -> bool:
    """The rule at time ``t``, straight from its definition."""
    window = int(rule["within"].removesuffix("ms"))
    inside = [
        e
        for e in history
        if t - window < e.ts <= t
        and rule["event"] in (e.name, ANY_EVENT)
        and ("where" not in rule or e.props.get("k") in ("x", "y"))
    ]
    kind = next((m for m in ("count", "sum", "min", "max", "distinct") if m in rule), "count")
    spec = dict(rule.get(kind, {"gte": 1}))
    prop = spec.pop("of", None)
    found = [e.props.get(prop) for e in inside]
    measure: float | None
    if kind == "count":
        measure = len(inside)
    elif kind == "distinct":
        measure = len({("bool", v) if isinstance(v, bool) else v for v in found if v is not None})
    else:
        numbers = [n for n in map(number, found) if n is not None]
        measure = math.fsum(numbers) if kind == "sum" else (min if kind == "min" else max)(numbers, default=None)
    [(op, operand)] = spec.items()
    if measure is None:
        return False
    if op == "between":
        return operand[0] <= measure <= operand[1]
    return COMPARE[op](measure, operand)


@settings(max_examples=400, deadline=None)
@given(conditions, events, st.integers(-5, 90))
def test_event_window_verdict_and_exact_deadline_match_brute_force(rule: dict[str, Any], history: list[Event], now: int) -> None:
    verdict = parse_condition(rule).evaluate(Profile("c", history=history), now)
    assert verdict.holds == brute_force(rule, history, now)
    horizon = 60 + 25 + 2  # after the last event has left, nothing changes
    if verdict.deadline is None:
        assert all(brute_force(rule, history, t) == verdict.holds for t in range(now + 1, horizon))
    else:
        assert verdict.deadline > now
        assert all(brute_force(rule, history, t) == verdict.holds for t in range(now + 1, verdict.deadline))
        assert brute_force(rule, history, verdict.deadline) != verdict.holds, "the verdict changes at its deadline"


def combined(leaf: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.builds(lambda cs: {"all": cs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda cs: {"any": cs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda c: {"not": c}, children),
        ),
        max_leaves=5,
    )


def brute_force_tree(rule: dict[str, Any], history: list[Event], t: int) -> bool:
    if "all" in rule:
        return all(brute_force_tree(c, history, t) for c in rule["all"])
    if "any" in rule:
        return any(brute_force_tree(c, history, t) for c in rule["any"])
    if "not" in rule:
        return not brute_force_tree(rule["not"], history, t)
    return brute_force(rule, history, t)


@settings(max_examples=300, deadline=None)
@given(combined(conditions), events, st.integers(-5, 90))
def test_combined_verdict_holds_until_its_deadline(rule: dict[str, Any], history: list[Event], now: int) -> None:
    verdict = parse_condition(rule).evaluate(Profile("c", history=history), now)
    assert verdict.holds == brute_force_tree(rule, history, now)
    until = 60 + 25 + 2 if verdict.deadline is None else verdict.deadline
    assert verdict.deadline is None or verdict.deadline > now
    assert all(brute_force_tree(rule, history, t) == verdict.holds for t in range(now + 1, until))
