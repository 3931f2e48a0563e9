"""Which segments an event can change: by name, by age against the windows that read it, with the segments referred to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream.rules import RuleSet, Verdict, load_rules, parse_condition
from stream.rules.model import widest
from stream.rules.triggers import Triggers
from stream.state.profile import HistoryPolicy, Profile
from stream.worker.step import advance

D = 86_400_000
NOW = 1_700_000_000_000
RULES = """segments:
  - name: browsers
    condition: {event: Product Viewed, within: 7d, count: {gte: 2}}
  - name: buyers
    condition: {event: Order Completed, within: 30d}
  - name: lifetime
    condition: {trait: $count.Product Viewed, gte: 5}
  - name: browsing_buyers
    condition: {all: [{segment: browsers}, {segment: buyers}]}
  - name: dormant
    condition: {not: {event: $any, within: 14d}}
"""


def ruleset(tmp_path: Path) -> RuleSet:
    (tmp_path / "r.yaml").write_text(RULES)
    return load_rules(tmp_path)


def view(ts: int) -> tuple[dict[str, Any], int]:
    return {"type": "track", "event": "Product Viewed", "properties": {}}, ts


def test_each_kind_tells_how_old_an_event_may_be_and_still_count() -> None:
    assert parse_condition({"event": "A", "within": "7d"}).event_windows() == {"A": 7 * D}
    assert parse_condition({"event": "A", "without": "B", "within": "1h", "expires": "3d"}).event_windows() == {"A": 3 * D, "B": 3 * D}
    assert parse_condition({"sequence": [{"event": "A"}, {"event": "B"}], "lookback": "2d"}).event_windows() == {"A": 2 * D, "B": 2 * D}
    assert parse_condition({"trait": "$count.A", "gte": 1}).event_windows() == {"A": None}, "a lifetime count reads every A"
    assert parse_condition({"trait": "$revenue", "gte": 1}).event_windows() == {"$any": None}
    assert parse_condition({"trait": "plan", "eq": "pro"}).event_windows() == {}
    both = parse_condition({"any": [{"event": "A", "within": "1d"}, {"event": "A", "within": "2d"}, {"trait": "$count.B", "gte": 1}]})
    assert both.event_windows() == {"A": 2 * D, "B": None} and both.event_names() == {"A", "B"}
    assert widest({"A": 1}, {"A": None}, {"A": 3}) == {"A": None}


def test_an_old_event_leaves_out_the_segments_whose_windows_it_misses(tmp_path: Path) -> None:
    rules = ruleset(tmp_path)
    record, _ = view(0)
    everything = set(rules.segments)
    assert rules.affected(record) == {"browsers", "lifetime", "browsing_buyers", "buyers", "dormant"}
    assert rules.narrowed(record, 3 * D, everything) == rules.affected(record), "inside every window"
    assert rules.narrowed(record, 10 * D, everything) == {"lifetime", "dormant"}
    assert rules.narrowed(record, 20 * D, everything) == {"lifetime"}, "only the lifetime count sees it"
    assert rules.narrowed(record, -D, everything) == rules.affected(record), "a future event enters every window"


def test_segments_not_evaluated_yet_and_what_they_refer_to_stay_in(tmp_path: Path) -> None:
    rules = ruleset(tmp_path)
    record, _ = view(0)
    assert rules.narrowed(record, 20 * D, {"lifetime"}) == {"lifetime", "browsers", "buyers", "browsing_buyers", "dormant"}
    assert rules.narrowed(record, 20 * D, {"lifetime", "dormant", "buyers", "browsers"}) == {"lifetime", "browsing_buyers", "browsers", "buyers"}


def test_triggers_keep_a_referring_segment_with_what_it_refers_to() -> None:
    triggers = Triggers.build({"near": {"A": 1_000}, "far": {"A": 5_000}}, {"near": {"near"}, "far": {"far", "near"}})
    assert triggers.narrowed("A", 2_000, {"near", "far"}) == {"far", "near"}, "far needs near's verdict"
    assert triggers.narrowed("A", 6_000, {"near", "far"}) == set()
    assert triggers.affected("B") == set() and triggers.narrowed("B", 0, set()) == set()


def test_a_step_of_old_events_decides_what_evaluating_every_segment_decides(tmp_path: Path) -> None:
    rules = ruleset(tmp_path)
    policy = HistoryPolicy(horizon_ms=30 * D)
    evaluated: list[frozenset[str] | None] = []

    class Counting:
        version = rules.version

        def evaluate(self, profile: Profile, now: int, only: frozenset[str] | None = None) -> dict[str, Verdict]:
            evaluated.append(only)
            return rules.evaluate(profile, now, only)

        def __getattr__(self, name: str) -> Any:
            return getattr(rules, name)

    events = [view(NOW - 20 * D + i) for i in range(6)]
    fast, full = Profile("c"), Profile("c")
    decided = advance(fast, events, NOW, Counting(), policy).changes  # type: ignore[arg-type]
    expected = []
    for event in events:  # one event per step: each one evaluates every segment it names
        expected += advance(full, [event], NOW, rules, policy).changes
    assert [(c.segment, c.change, c.seq, c.reason) for c in decided] == [(c.segment, c.change, c.seq, c.reason) for c in expected]
    assert fast.to_bytes() == full.to_bytes() and fast.memberships == {"lifetime": NOW, "dormant": NOW}
    assert evaluated[0] is None and evaluated[1:] == [frozenset({"lifetime"})] * 5, "the old views only reach the lifetime count"
