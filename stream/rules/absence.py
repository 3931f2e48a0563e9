"""Absence triggers: ``{event: Product Added, without: Order Completed, within: 24h}``.

* ``event`` and ``where``: the trigger (see :mod:`stream.rules.filters`).
* ``without`` and ``without_where``: the event that cancels it, e.g.
  ``without: page, without_where: {name: {eq: Checkout}}``.
* ``within``: how long the trigger waits for the cancelling event.
* ``expires`` (default ``30d``, longer than ``within``): how long a trigger
  counts at all; it bounds the history kept and lets the customer leave.

The condition holds at ``now`` when some trigger at time ``a`` has
``a + within <= now`` and ``a > now - expires``, and no cancelling event lies
in ``(a, now]`` (one at the trigger's own time does not cancel it). So the
customer enters at ``a + within`` with no new event (a deadline), and leaves
when a cancelling event comes or at ``a + expires`` (a deadline). Each trigger
holds over one span of time, ``[a + within, min(next cancel, a + expires))``;
the verdict is their union (:func:`stream.rules.windows.cover`), so a later
trigger after a cancel restarts the clock and a later trigger extends the stay.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

from pydantic import Field, model_validator

from stream.rules.durations import UNITS_MS, Duration, format_duration
from stream.rules.filters import EventFilter, event_json
from stream.rules.model import Compiled, ConditionModel, Horizon
from stream.rules.operators import ValueTest
from stream.rules.verdict import Verdict
from stream.rules.windows import cover, later_than
from stream.state.profile import Event, Profile, iso

#: How long a trigger counts when ``expires`` is not given.
DEFAULT_EXPIRES = 30 * UNITS_MS["d"]


class AbsenceCondition(EventFilter, ConditionModel):
    """A trigger event with no cancelling event ``within`` after it, until it ``expires``.

    >>> AbsenceCondition.model_validate({"event": "Product Added", "without": "Order Completed", "within": "2h"}).label
    'Product Added without Order Completed within 2h'
    """

    kind: ClassVar[str] = "absence"

    without: str = Field(min_length=1)
    without_where: dict[str, ValueTest] = {}
    within: Duration
    expires: Duration = Field(DEFAULT_EXPIRES, json_schema_extra={"default": format_duration(DEFAULT_EXPIRES)})

    @model_validator(mode="after")
    def _expires_after_within(self) -> AbsenceCondition:
        if self.expires <= self.within:
            raise ValueError(
                f"expires ({format_duration(self.expires)}) must be longer than within ({format_duration(self.within)}) "
                f"or the condition never holds; set e.g. 'expires: {format_duration(2 * self.within)}'"
            )
        return self

    @cached_property
    def cancel(self) -> EventFilter:
        """The filter of the cancelling events (``without`` and ``without_where``)."""
        return EventFilter(event=self.without, where=self.without_where)

    @cached_property
    def label(self) -> str:
        """The condition as it reads in reasons, e.g. ``Product Added without Order Completed within 24h``."""
        return f"{self.text} without {self.cancel.text} within {format_duration(self.within)}"

    def _spans(self, history: list[Event], now: int) -> tuple[list[tuple[int, int]], list[Event], list[Event]]:
        """Each live trigger's span ``(begin, end)``, the live triggers (in the same order) and their possible cancels."""
        recent = later_than(history, now - self.expires)
        triggers = self.select(recent)
        if not triggers:
            return [], triggers, []
        cancels = self.cancel.select(recent)
        times = [e.ts for e in cancels]
        spans = []
        for a in triggers:
            end = a.ts + self.expires
            after = bisect_right(times, a.ts)
            if after < len(times):
                end = min(end, times[after])
            spans.append((a.ts + self.within, end))
        return spans, triggers, cancels

    def compile(self) -> Compiled:
        spans_of, reason = self._spans, self._reason

        def judged(spans: list[tuple[int, int]], triggers: list[Event], cancels: list[Event], now: int) -> Verdict:
            holds, deadline = cover(spans, now)
            return Verdict(holds, reason, deadline, spans, triggers, cancels, now)

        nothing = judged([], [], [], 0)  # no trigger before it expires: the same verdict at any time

        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            spans, triggers, cancels = spans_of(profile.history, now)
            return judged(spans, triggers, cancels, now) if triggers else nothing

        return evaluate

    def _reason(self, spans: list[tuple[int, int]], triggers: list[Event], cancels: list[Event], now: int) -> str:
        return self._story(spans, triggers, cancels, now)[0]

    def _story(
        self, spans: list[tuple[int, int]], triggers: list[Event], cancels: list[Event], now: int
    ) -> tuple[str, Event | None, Event | None]:
        """The reason at ``now``, the trigger it names and the event that cancelled that trigger."""
        holding = [a for (begin, end), a in zip(spans, triggers) if begin <= now < end]  # a span covers now: it holds
        if holding:
            trigger = max(holding, key=lambda a: a.ts)
            return f"{self.label}: {self.noun} at {iso(trigger.ts)}, no {self.cancel.noun} since", trigger, None
        past = [a for a in triggers if a.ts <= now]
        if not past:
            return f"{self.label}: no {self.noun} in the last {format_duration(self.expires)}", None, None
        trigger = past[-1]
        cancel = next((b for b in cancels if trigger.ts < b.ts <= now), None)
        if cancel is None:
            return f"{self.label}: {self.noun} at {iso(trigger.ts)}, {format_duration(self.within)} not passed yet", trigger, None
        return f"{self.label}: {self.noun} at {iso(trigger.ts)}, then {self.cancel.noun} at {iso(cancel.ts)}", trigger, cancel

    def details(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> dict[str, Any]:
        """The condition as written, the trigger the reason names and the event that cancelled it."""
        _, trigger, cancel = self._story(*self._spans(profile.history, now), now)
        return super().details(profile, now, verdicts) | {
            "trigger": None if trigger is None else event_json(trigger),
            "cancelled_by": None if cancel is None else event_json(cancel),
        }

    def lookback_ms(self) -> int:
        return self.expires

    def properties(self) -> set[str]:
        return set(self.where) | set(self.without_where)

    def event_windows(self) -> dict[str, Horizon]:
        return {self.event: self.expires, self.without: self.expires}
