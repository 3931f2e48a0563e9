"""Event window conditions: ``{event: Product Viewed, within: 7d, count: {gte: 3}}``.

* ``event`` and ``where``: which events count (see :mod:`stream.rules.filters`);
  ``$any`` counts every history entry, e.g. dormancy: ``{not: {event: $any, within: 30d}}``.
* ``within``: the window (see :mod:`stream.rules.durations`); an event counts
  while ``now - within < ts <= now`` (see :mod:`stream.rules.windows`), so a
  future-dated event starts counting at its time.
* at most one measure, compared with ``gt``/``gte``/``lt``/``lte``/``eq``/``between``:
  ``count: {gte: 3}`` (the default is ``{gte: 1}``: "did it within the window"),
  ``sum``/``min``/``max: {of: revenue, gte: 200}`` over numeric values (numeric
  strings count as numbers; other values are skipped; ``min``/``max`` of no
  values compare false), ``distinct: {of: product_id, gte: 3}`` (different
  values; ``1`` and ``1.0`` are one value, ``"1"`` and ``1`` two).

The deadline is exact: the first later time at which the comparison flips as
events leave the window or future-dated ones enter it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

from pydantic import Field, model_validator

from stream.rules.durations import Duration, format_duration
from stream.rules.filters import EventFilter, event_json
from stream.rules.model import Compiled, ConditionModel, Horizon
from stream.rules.operators import Comparison, as_number, show
from stream.rules.verdict import Verdict
from stream.rules.windows import Aggregate, Distinct, Extreme, Sum, later_than, sweep, sweep_count
from stream.state.profile import Event, Profile

#: The measure keys of an event condition.
MEASURES = ("count", "sum", "min", "max", "distinct")
#: How many matched events :meth:`EventCondition.explain` lists (the newest).
EXPLAIN_EVENTS = 50

_AT_LEAST_ONCE = Comparison(gte=1)


class Aggregation(Comparison):
    """A measure over one event property, e.g. ``{of: revenue, gte: 200}``."""

    of: str = Field(min_length=1)


def _distinct_key(value: Any) -> Any:
    kind = type(value)
    if kind is bool:
        return ("bool", value)
    return value if kind in (str, int, float) else None


class EventCondition(EventFilter, ConditionModel):
    """Events named ``event`` (passing ``where``) within the last ``within``, measured and compared.

    >>> EventCondition.model_validate({"event": "Order Completed", "within": "30d"}).label
    'count(Order Completed within 30d)'
    """

    kind: ClassVar[str] = "event"

    within: Duration
    count: Comparison | None = None
    sum: Aggregation | None = None
    min: Aggregation | None = None
    max: Aggregation | None = None
    distinct: Aggregation | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> EventCondition:
        given = [m for m in MEASURES if getattr(self, m) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one measure of {', '.join(MEASURES)}, got {' and '.join(given)}")
        return self

    @cached_property
    def measure(self) -> tuple[str, Comparison, str | None]:
        """The measure's name, comparison and property (``count``, ``>= 1``, ``None`` when none is written)."""
        for kind in MEASURES:
            comparison = getattr(self, kind)
            if comparison is not None:
                return kind, comparison, getattr(comparison, "of", None)
        return "count", _AT_LEAST_ONCE, None

    @cached_property
    def label(self) -> str:
        """The measured quantity as it reads in reasons, e.g. ``sum(revenue of Order Completed within 30d)``."""
        kind, _, of = self.measure
        of = f"{of} of " if of else ""
        return f"{kind}({of}{self.text} within {format_duration(self.within)})"

    def matches(self, history: list[Event], now: int) -> list[Event]:
        """The events that pass ``event`` and ``where`` and have not left the window at ``now`` (future ones included)."""
        return self.select(later_than(history, now - self.within))

    def _aggregate(self, kind: str, of: str, events: list[Event]) -> Aggregate:
        if kind == "distinct":
            return Distinct([_distinct_key(e.props.get(of)) for e in events])
        values = [as_number(e.props.get(of)) for e in events]
        return Sum(values) if kind == "sum" else Extreme(values, largest=kind == "max")

    def compile(self) -> Compiled:
        within, select, reason = self.within, self.select, self._reason
        kind, comparison, of = self.measure
        if of is None:
            low, high = comparison.whole_range

            def measured(events: list[Event], now: int) -> Verdict:
                value, holds, deadline, _ = sweep_count([e.ts for e in events], within, now, low, high)
                return Verdict(holds, reason, deadline, value, holds)

        else:
            test = comparison.predicate

            def measured(events: list[Event], now: int) -> Verdict:
                value, holds, deadline, _ = sweep([e.ts for e in events], self._aggregate(kind, of, events), within, now, test)
                return Verdict(holds, reason, deadline, value, holds)

        nothing = measured([], 0)  # no event in the window: the same verdict at any time

        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            events = select(later_than(profile.history, now - within))
            return measured(events, now) if events else nothing

        return evaluate

    def _reason(self, measure: Any, holds: bool) -> str:
        text = self.measure[1].text
        return f"{self.label} = {show(measure)} {text}" if holds else f"{self.label} = {show(measure)}, not {text}"

    def details(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> dict[str, Any]:
        """The condition as written, how many events are in the window and the newest of them."""
        events = self.matches(profile.history, now)
        inside = bisect_right([e.ts for e in events], now)
        shown = events[max(0, inside - EXPLAIN_EVENTS) : inside]
        return super().details(profile, now, verdicts) | {
            "matched": inside,
            "events": [event_json(e) for e in shown],
        }

    def lookback_ms(self) -> int:
        return self.within

    def properties(self) -> set[str]:
        of = self.measure[2]
        return set(self.where) | ({of} if of else set())

    def event_windows(self) -> dict[str, Horizon]:
        return {self.event: self.within}
