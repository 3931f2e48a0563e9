"""Sequences (funnels): order, the `within` gap, the lookback edge, the latest-starting chain's deadline, explain."""

from __future__ import annotations

from typing import Any

from stream.rules import SequenceCondition, Verdict, parse_condition
from stream.state.profile import Event, Profile, iso

M, H, D = 60_000, 3_600_000, 86_400_000
T = 1_700_000_000_000
FUNNEL = {
    "sequence": [{"event": "Product Viewed"}, {"event": "Product Added"}, {"event": "page", "where": {"name": {"eq": "Checkout"}}}],
    "within": "1h",
    "lookback": "7d",
}
LABEL = 'sequence Product Viewed, then Product Added, then page where name == "Checkout" (each within 1h, in the last 7d)'


def sequence(**yaml: Any) -> SequenceCondition:
    condition = parse_condition(yaml)
    assert isinstance(condition, SequenceCondition)
    return condition


def profile(*events: tuple[int, str]) -> Profile:
    history = [Event(ts, name, {"name": "Checkout"} if name == "page" else {}) for ts, name in events]
    return Profile("c", history=sorted(history, key=lambda e: e.ts))


def funnel(view: int, add: int, checkout: int) -> Profile:
    return profile((view, "Product Viewed"), (add, "Product Added"), (checkout, "page"))


def test_completed_funnel_holds_until_its_first_step_leaves_the_lookback() -> None:
    p = funnel(T, T + 10 * M, T + 20 * M)
    verdict = sequence(**FUNNEL).evaluate(p, T + H)
    assert verdict == Verdict(True, f"{LABEL}: from {iso(T)} to {iso(T + 20 * M)}", T + 7 * D)
    assert [sequence(**FUNNEL).evaluate(p, t).holds for t in (T + 7 * D - 1, T + 7 * D)] == [True, False]


def test_steps_must_be_in_order_and_strictly_later() -> None:
    assert not sequence(**FUNNEL).evaluate(funnel(T + 10 * M, T, T + 20 * M), T + H).holds
    assert not sequence(**FUNNEL).evaluate(funnel(T, T, T + 20 * M), T + H).holds, "the same time is not later"
    assert sequence(**FUNNEL).evaluate(funnel(T, T + 1, T + 2), T + H).holds


def test_each_step_at_most_within_after_the_previous() -> None:
    assert sequence(**FUNNEL).evaluate(funnel(T, T + H, T + 2 * H), T + 3 * H).holds, "exactly within is in time"
    assert not sequence(**FUNNEL).evaluate(funnel(T, T + H + 1, T + H + 2), T + 3 * H).holds
    no_gap_limit = {**FUNNEL, "within": None}
    del no_gap_limit["within"]
    assert sequence(**no_gap_limit).evaluate(funnel(T, T + 3 * D, T + 6 * D), T + 6 * D).holds


def test_the_lookback_edge_is_the_window_edge() -> None:
    p = funnel(T, T + M, T + 2 * M)
    condition = sequence(**FUNNEL)
    assert [condition.evaluate(p, T + 7 * D - 1).holds, condition.evaluate(p, T + 7 * D).holds] == [True, False]
    assert condition.evaluate(p, T + 7 * D) == Verdict(False, f"{LABEL}: 0 of 3 steps done")


def test_the_latest_starting_chain_decides_the_deadline() -> None:
    # Two views before the add: the chain from the later view keeps the funnel longest.
    p = profile((T, "Product Viewed"), (T + 30 * M, "Product Viewed"), (T + 40 * M, "Product Added"), (T + 50 * M, "page"))
    verdict = sequence(**FUNNEL).evaluate(p, T + H)
    assert verdict.deadline == T + 30 * M + 7 * D
    assert verdict.reason == f"{LABEL}: from {iso(T + 30 * M)} to {iso(T + 50 * M)}"
    # A later, separate completion extends it.
    later = profile(*[(e.ts, e.name) for e in p.history], (T + 2 * D, "Product Viewed"), (T + 2 * D + 1, "Product Added"), (T + 2 * D + 2, "page"))
    assert sequence(**FUNNEL).evaluate(later, T + 3 * D).deadline == T + 2 * D + 7 * D


def test_a_future_last_step_is_the_deadline_and_progress_is_reported() -> None:
    p = funnel(T, T + M, T + 2 * M)
    assert sequence(**FUNNEL).evaluate(p, T + M) == Verdict(False, f"{LABEL}: 2 of 3 steps done", T + 2 * M)
    assert sequence(**FUNNEL).evaluate(p, T - 1) == Verdict(False, f"{LABEL}: 0 of 3 steps done", T + 2 * M)


def test_where_on_a_step_and_repeated_steps() -> None:
    home = profile((T, "Product Viewed"), (T + M, "Product Added"))
    home.history.append(Event(T + 2 * M, "page", {"name": "Home"}))
    assert not sequence(**FUNNEL).evaluate(home, T + H).holds
    twice = sequence(sequence=[{"event": "Login"}, {"event": "Login"}], lookback="1d")
    assert not twice.evaluate(profile((T, "Login")), T + H).holds
    assert twice.evaluate(profile((T, "Login"), (T + 1, "Login")), T + H).holds


def test_state_it_needs() -> None:
    condition = sequence(**FUNNEL)
    assert condition.lookback_ms() == 7 * D
    assert condition.event_names() == {"Product Viewed", "Product Added", "page"}
    assert condition.properties() == {"name"}


def test_explain_lists_the_chain() -> None:
    tree = sequence(**FUNNEL).explain(funnel(T, T + M, T + 2 * M), T + H)
    assert tree["kind"] == "sequence" and tree["holds"] is True and tree["deadline"] == iso(T + 7 * D)
    assert [step["event"] for step in tree["chain"]] == ["Product Viewed", "Product Added", "page"]
    assert tree["chain"][2] == {"at": iso(T + 2 * M), "event": "page", "properties": {"name": "Checkout"}}
    assert sequence(**FUNNEL).explain(Profile("c"), T)["chain"] == []
