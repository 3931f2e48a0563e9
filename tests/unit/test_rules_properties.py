"""Property tests: verdicts and deadlines of event windows, absences, sequences and relative dates against brute force."""

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


absences = st.builds(
    lambda trigger, cancel, where, cancel_where, within, longer: {
        "event": trigger,
        "without": cancel,
        "within": f"{within}ms",
        "expires": f"{within + longer}ms",
        **where,
        **cancel_where,
    },
    st.sampled_from(["A", "B", ANY_EVENT]),
    st.sampled_from(["A", "B", ANY_EVENT]),
    st.sampled_from([{}, {"where": {"k": {"in": ["x", "y"]}}}]),
    st.sampled_from([{}, {"without_where": {"k": {"eq": "z"}}}]),
    st.integers(0, 20).map(lambda n: n or 1),
    st.integers(1, 20),
)
steps = st.builds(
    lambda name, where: {"event": name, **where},
    st.sampled_from(["A", "B", ANY_EVENT]),
    st.sampled_from([{}, {}, {"where": {"k": {"in": ["x", "y"]}}}]),
)
sequences = st.builds(
    lambda chain, within, lookback: {"sequence": chain, **within, "lookback": f"{lookback}ms"},
    st.lists(steps, min_size=2, max_size=3),
    st.one_of(st.just({}), st.integers(1, 15).map(lambda n: {"within": f"{n}ms"})),
    st.integers(1, 30),
)
dates = st.builds(
    lambda bounds: {"trait": "$last_seen", **bounds},
    st.one_of(
        st.integers(1, 30).map(lambda n: {"older_than": f"{n}ms"}),
        st.integers(1, 30).map(lambda n: {"newer_than": f"{n}ms"}),
        st.tuples(st.integers(1, 15), st.integers(1, 15)).map(
            lambda p: {"older_than": f"{p[0]}ms", "newer_than": f"{p[0] + p[1]}ms"}
        ),
    ),
)


def ms(duration: str) -> int:
    return int(duration.removesuffix("ms"))


def accepts(spec: dict[str, Any], where_key: str, name_key: str, e: Event) -> bool:
    """Whether ``e`` passes the event name ``spec[name_key]`` and the filters ``spec[where_key]`` used above."""
    if spec[name_key] not in (e.name, ANY_EVENT):
        return False
    where = spec.get(where_key, {}).get("k")
    return where is None or e.props.get("k") in where.get("in", [where.get("eq")])


def brute_force_absence(rule: dict[str, Any], history: list[Event], t: int) -> bool:
    """Some trigger ``a`` with ``a + within <= t``, ``a > t - expires`` and no cancel in ``(a, t]``."""
    within, expires = ms(rule["within"]), ms(rule["expires"])
    return any(
        a.ts + within <= t
        and a.ts > t - expires
        and not any(a.ts < b.ts <= t and accepts(rule, "without_where", "without", b) for b in history)
        for a in history
        if accepts(rule, "where", "event", a)
    )


def brute_force_sequence(rule: dict[str, Any], history: list[Event], t: int) -> bool:
    """A chain of events inside the lookback, one per step, strictly later each, at most ``within`` apart."""
    lookback, within = ms(rule["lookback"]), ms(rule.get("within", f"{10**9}ms"))
    inside = [e for e in history if t - lookback < e.ts <= t]

    def chain(step: int, after: Event | None) -> bool:
        if step == len(rule["sequence"]):
            return True
        return any(
            accepts(rule["sequence"][step], "where", "event", e) and chain(step + 1, e)
            for e in inside
            if after is None or after.ts < e.ts <= after.ts + within
        )

    return chain(0, None)


def brute_force_date(rule: dict[str, Any], last_seen: int | None, t: int) -> bool:
    if last_seen is None:
        return False
    age = t - last_seen
    older = "older_than" not in rule or age >= ms(rule["older_than"])
    return older and ("newer_than" not in rule or age < ms(rule["newer_than"]))


def brute_force_leaf(rule: dict[str, Any], profile: Profile, t: int) -> bool:
    if "without" in rule:
        return brute_force_absence(rule, profile.history, t)
    if "sequence" in rule:
        return brute_force_sequence(rule, profile.history, t)
    if "trait" in rule:
        return brute_force_date(rule, profile.last_seen, t)
    return brute_force(rule, profile.history, t)


#: After this time nothing in the generated histories can change a verdict.
HORIZON = 60 + 40 + 2


@settings(max_examples=300, deadline=None)
@given(st.one_of(absences, sequences, dates), events, st.one_of(st.none(), st.integers(0, 60)), st.integers(-5, 90))
def test_absence_sequence_and_date_verdicts_and_exact_deadlines_match_brute_force(
    rule: dict[str, Any], history: list[Event], last_seen: int | None, now: int
) -> None:
    profile = Profile("c", history=history, last_seen=last_seen)
    verdict = parse_condition(rule).evaluate(profile, now)
    assert_steady_until_deadline(verdict, lambda t: brute_force_leaf(rule, profile, t), now)
    if verdict.deadline is not None:
        assert brute_force_leaf(rule, profile, verdict.deadline) != verdict.holds, "the verdict changes at its deadline"


def assert_steady_until_deadline(verdict: Any, oracle: Any, now: int) -> None:
    """The verdict equals the oracle at ``now`` and at every ms after it, up to its deadline (or the horizon)."""
    assert verdict.holds == oracle(now)
    assert verdict.deadline is None or verdict.deadline > now
    until = HORIZON if verdict.deadline is None else verdict.deadline
    assert all(oracle(t) == verdict.holds for t in range(now + 1, until))


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


def brute_force_tree(rule: dict[str, Any], profile: Profile, t: int) -> bool:
    if "all" in rule:
        return all(brute_force_tree(c, profile, t) for c in rule["all"])
    if "any" in rule:
        return any(brute_force_tree(c, profile, t) for c in rule["any"])
    if "not" in rule:
        return not brute_force_tree(rule["not"], profile, t)
    return brute_force_leaf(rule, profile, t)


@settings(max_examples=300, deadline=None)
@given(
    combined(st.one_of(conditions, absences, sequences, dates)),
    events,
    st.one_of(st.none(), st.integers(0, 60)),
    st.integers(-5, 90),
)
def test_combined_verdict_holds_until_its_deadline(
    rule: dict[str, Any], history: list[Event], last_seen: int | None, now: int
) -> None:
    profile = Profile("c", history=history, last_seen=last_seen)
    verdict = parse_condition(rule).evaluate(profile, now)
    assert_steady_until_deadline(verdict, lambda t: brute_force_tree(rule, profile, t), now)
