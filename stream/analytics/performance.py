"""Segment performance from an events source: replay it as the live system would, then measure.

The source (a JSON-lines/CSV file or the events topic) is replayed through
:func:`stream.replay.replay` — the worker's own step with an event-time clock — so each
``entered`` change, its time and its holdout ``group`` are exactly the live ones. While the
records stream past, every track event's time, name and revenue is kept per customer (the
customer is the record's ``userId``, else ``anonymousId``), and each entrant's window after
entering is read from them (:mod:`stream.analytics.outcomes`).

Entrants are the customers whose **first** entry in the period (``since`` ≤ at < ``until``)
falls there; an entrant whose window is not over by the source's last event is *censored*:
counted apart and left out of every figure, so recent entrants do not dilute the rates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stream.analytics.errors import AnalyticsError
from stream.analytics.outcomes import ALL, Entry, MemberOutcome, Outcome, compare, member_outcome
from stream.replay import replay
from stream.rules import RuleSet
from stream.rules.durations import format_duration
from stream.state.profile import event_time, iso, revenue_of


@dataclass(frozen=True)
class PerformanceSpec:
    """What to measure: the goal event, the window after entering, the confidence, the entry period (epoch ms)."""

    goal: str = "Order Completed"
    within_ms: int = 7 * 86_400_000
    confidence: float = 0.95
    since: int | None = None
    until: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {self.confidence!r}")
        if self.within_ms <= 0:
            raise ValueError(f"the window after entering must be longer than 0, got {self.within_ms} ms")


class _Outcomes:
    """Collects every track event's outcome per customer while records stream to the replay."""

    def __init__(self) -> None:
        self.by_customer: dict[str, list[Outcome]] = defaultdict(list)
        self.last = 0

    def tap(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            if isinstance(record, dict) and record.get("type") == "track" and isinstance(record.get("event"), str):
                customer = record.get("userId") or record.get("anonymousId")
                props = record.get("properties")
                try:
                    ts = event_time(record)
                except ValueError:
                    ts = None  # the replay rejects it too
                if customer is not None and ts is not None:
                    revenue = revenue_of(props) if isinstance(props, dict) else 0.0
                    self.by_customer[str(customer)].append(Outcome(ts, record["event"], revenue))
                    self.last = max(self.last, ts)
            yield record

    def sorted(self) -> dict[str, list[Outcome]]:
        return {customer: sorted(events) for customer, events in self.by_customer.items()}


def measure(
    records: Iterable[dict[str, Any]],
    ruleset: RuleSet,
    history_max_events: int,
    spec: PerformanceSpec,
    segments: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """``{"goal", "within", "confidence", "observed_until", "segments": [per-segment report]}`` for ``records``.

    ``segments`` default to every segment of ``ruleset``; an unknown name raises :class:`AnalyticsError`.
    """
    names = segments or sorted(ruleset.segments)
    unknown = [n for n in names if n not in ruleset.segments]
    if unknown:
        raise AnalyticsError(f"unknown segments {', '.join(unknown)}; the rules have {', '.join(sorted(ruleset.segments))}")
    outcomes = _Outcomes()
    result = replay(outcomes.tap(records), ruleset, ruleset.policy(history_max_events), progress=progress)
    events = outcomes.sorted()
    entries = first_entries(result.changes, set(names), spec.since, spec.until)
    return {
        "goal": spec.goal,
        "within": format_duration(spec.within_ms),
        "confidence": spec.confidence,
        "entered_since": iso(spec.since),
        "entered_until": iso(spec.until),
        "observed_until": iso(outcomes.last) if outcomes.last else None,
        "segments": [
            segment_report(name, ruleset.segments[name].holdout, entries.get(name, []), events, outcomes.last, spec) for name in names
        ],
    }


def first_entries(changes: Iterable[Any], names: set[str], since: int | None, until: int | None) -> dict[str, list[Entry]]:
    """Per segment, each customer's first ``entered`` change with ``since <= at < until``, in time order."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[Entry]] = defaultdict(list)
    for change in sorted((c for c in changes if c.change == "entered" and c.segment in names), key=lambda c: (c.at, c.seq)):
        if (since is not None and change.at < since) or (until is not None and change.at >= until):
            continue
        if (change.segment, change.customer_id) not in seen:
            seen.add((change.segment, change.customer_id))
            out[change.segment].append(Entry(change.customer_id, change.at, change.group))
    return out


def segment_report(
    name: str, holdout: float | None, entries: list[Entry], events: dict[str, list[Outcome]], observed_until: int, spec: PerformanceSpec
) -> dict[str, Any]:
    """One segment's figures: entrants, censored ones, and :func:`stream.analytics.outcomes.compare` per arm."""
    arms: dict[str, list[MemberOutcome]] = {"treatment": [], "control": []} if holdout else {ALL: []}
    censored = 0
    for entry in entries:
        if entry.at + spec.within_ms > observed_until:
            censored += 1
            continue
        arm = entry.group if holdout and entry.group in arms else ALL
        arms.setdefault(arm, []).append(member_outcome(entry.at, events.get(entry.customer_id, []), spec.goal, spec.within_ms))
    return {
        "segment": name,
        "holdout": holdout,
        "entrants": len(entries),
        "censored": censored,
        "measured": len(entries) - censored,
        **compare(arms, spec.confidence),
    }
