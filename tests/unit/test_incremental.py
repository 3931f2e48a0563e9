"""Incremental evaluation decides exactly what evaluating every segment after every event decides.

An event re-evaluates only the segments it can change (``RuleSet.affected``) while the
profile's verdicts are known and none is due; the others keep their verdicts until their
deadline. Here two copies of a customer live through the same random events, batches and
timer firings: one with the real rule set, one with every event evaluating every segment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.rules import load_rules
from stream.rules.ruleset import RuleSet
from stream.state.profile import Profile, iso
from stream.worker.step import advance

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules(ROOT / "rules")
T0 = 1_700_000_000_000
HOUR = 3_600_000


class EveryEvent:
    """The same rule set, but every event may change every segment."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.version = rules.version

    def affected(self, record: dict[str, Any]) -> frozenset[str] | None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rules, name)


def test_an_event_touches_only_segments_reading_it() -> None:
    viewed = RULES.affected({"type": "track", "event": "Product Viewed"})
    unknown = RULES.affected({"type": "track", "event": "Nothing Reads This"})
    assert viewed is not None and unknown is not None
    assert "product_browsers" in viewed and "product_browsers" not in unknown
    assert "ny_25_34" in RULES.segments and "ny_25_34" not in viewed  # a trait rule: identify changes it, a view does not
    assert unknown < viewed
    assert RULES.affected({"type": "identify", "traits": {"age": 30}}) is None
    assert RULES.affected({"type": "track", "event": "Product Viewed", "context": {"consent": {}}}) is None


def _record(kind: int, name: str, value: float) -> dict[str, Any]:
    if kind == 0:
        return {"type": "identify", "traits": {"age": int(value) % 60 + 18, "city": "New York", "signed_up_at": iso(T0 - 100 * 86_400_000)}}
    if kind == 1:
        return {"type": "page", "name": "Pricing" if value > 50 else "Home", "properties": {"time_on_page": value}}
    return {"type": "track", "event": name, "properties": {"revenue": value, "price": value}}


events = st.lists(
    st.tuples(
        st.integers(0, 9),  # kind: mostly track
        st.sampled_from(["Product Viewed", "Product Added", "Order Completed", "Email Opened", "Other"]),
        st.floats(0, 900),
        st.integers(0, 80 * HOUR),  # gap before the event
        st.booleans(),  # does it close a batch?
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(events)
def test_incremental_evaluation_decides_the_same_changes(script: list[tuple[int, str, float, int, bool]]) -> None:
    fast, full = Profile("c"), Profile("c")
    full_rules = EveryEvent(RULES)
    policy = RULES.policy(1000)
    decided: tuple[list[Any], list[Any]] = ([], [])
    batch: list[tuple[dict[str, Any], int]] = []
    ts = T0

    def fire_due(until: int) -> None:
        # Each copy's timer fires at its own deadline, as a worker's would.
        for profile, rules, changes in ((fast, RULES, decided[0]), (full, full_rules, decided[1])):
            while profile.deadline is not None and profile.deadline <= until:
                changes.extend(advance(profile, [], profile.deadline, rules, policy).changes)

    for kind, name, value, gap, closes in script:
        ts += gap
        batch.append((_record(min(kind, 2), name, value), ts))
        if closes:
            fire_due(ts)
            decided[0].extend(advance(fast, list(batch), ts, RULES, policy).changes)
            decided[1].extend(advance(full, list(batch), ts, full_rules, policy).changes)
            batch.clear()
    fire_due(ts + 400 * 86_400_000)
    assert decided[0] == decided[1]
    assert fast.memberships == full.memberships
