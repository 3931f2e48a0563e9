"""Sequences (funnels): ``{sequence: [{event: A}, {event: B, where: ...}, {event: C}], within: 1h, lookback: 7d}``.

* ``sequence``: two or more steps, each an event filter (``event`` and optional
  ``where``, see :mod:`stream.rules.filters`).
* ``within`` (optional): each step at most this long after the previous one.
* ``lookback``: the window the whole sequence must lie in, with the window
  edge of :mod:`stream.rules.windows` (``now - lookback < ts <= now``).

The condition holds at ``now`` when the events inside the lookback contain a
chain A, then B, then C: one event per step, each strictly later than the one
before (and at most ``within`` later). A completed chain holds from its last
step until its first step leaves the lookback, ``[last, first + lookback)``;
the verdict is the union over chains (:func:`stream.rules.windows.cover`), so
the deadline is exact: the latest-starting chain decides when it ends.

For every event of a step only the latest-starting chain ending in it matters,
and that chain goes through the latest event of the previous step before it
(later chains of a step never start earlier), so one pass per step finds them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar, NamedTuple

from pydantic import field_validator

from stream.rules.durations import Duration, format_duration
from stream.rules.filters import EventFilter, event_json
from stream.rules.model import ConditionModel
from stream.rules.verdict import NO_VERDICTS, Verdict
from stream.rules.windows import cover, later_than
from stream.state.profile import Event, Profile, iso


class Link(NamedTuple):
    """The latest-starting chain of steps that ends in ``event``: its first step's time and the link before."""

    event: Event
    first: int
    previous: Link | None

    def events(self) -> list[Event]:
        """The chain's events, first step first."""
        link: Link | None = self
        chain = []
        while link is not None:
            chain.append(link.event)
            link = link.previous
        return chain[::-1]


class SequenceCondition(ConditionModel):
    """Events matching each step in order, each at most ``within`` after the previous, all within ``lookback``.

    >>> SequenceCondition.model_validate({"sequence": [{"event": "A"}, {"event": "B"}], "lookback": "7d"}).label
    'sequence A, then B (in the last 7d)'
    """

    kind: ClassVar[str] = "sequence"

    sequence: list[EventFilter]
    within: Duration | None = None
    lookback: Duration

    @field_validator("sequence")
    @classmethod
    def _steps(cls, steps: list[EventFilter]) -> list[EventFilter]:
        if len(steps) < 2:
            raise ValueError("a sequence needs at least two steps; for one event use e.g. {event: Order Completed, within: 7d}")
        return steps

    @cached_property
    def label(self) -> str:
        """The condition as it reads in reasons, e.g. ``sequence A, then B (each within 1h, in the last 7d)``."""
        each = f"each within {format_duration(self.within)}, " if self.within is not None else ""
        steps = ", then ".join(step.text for step in self.sequence)
        return f"sequence {steps} ({each}in the last {format_duration(self.lookback)})"

    def chains(self, history: list[Event], now: int) -> list[list[Link]]:
        """Per step, the latest-starting chain ending in each of its events inside the lookback at ``now`` (future ones too)."""
        recent = later_than(history, now - self.lookback)
        steps: list[list[Link]] = [[Link(e, e.ts, None) for e in self.sequence[0].select(recent)]]
        for step in self.sequence[1:]:
            before = steps[-1]
            times = [link.event.ts for link in before]
            links = []
            for e in step.select(recent):
                i = bisect_left(times, e.ts) - 1
                if i >= 0 and (self.within is None or e.ts - times[i] <= self.within):
                    links.append(Link(e, before[i].first, before[i]))
            steps.append(links)
        return steps

    def _judge(self, profile: Profile, now: int) -> tuple[Verdict, list[Event]]:
        """The verdict and the chain it names (the latest-starting complete one; none when it fails)."""
        steps = self.chains(profile.history, now)
        complete = steps[-1]
        holds, deadline = cover(((link.event.ts, link.first + self.lookback) for link in complete), now)
        if holds:
            done = [link for link in complete if link.event.ts <= now < link.first + self.lookback]
            chain = max(done, key=lambda link: link.first).events()
            reason = f"{self.label}: from {iso(chain[0].ts)} to {iso(chain[-1].ts)}"
            return Verdict(True, reason, deadline), chain
        reached = sum(1 for links in steps if any(link.event.ts <= now for link in links))
        return Verdict(False, f"{self.label}: {reached} of {len(steps)} steps done", deadline), []

    def evaluate(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict] = NO_VERDICTS) -> Verdict:
        return self._judge(profile, now)[0]

    def details(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> dict[str, Any]:
        """The condition as written and the events of the chain that completes it."""
        return super().details(profile, now, verdicts) | {"chain": [event_json(e) for e in self._judge(profile, now)[1]]}

    def lookback_ms(self) -> int:
        return self.lookback

    def properties(self) -> set[str]:
        return set().union(*(step.where for step in self.sequence))

    def event_names(self) -> set[str]:
        return {step.event for step in self.sequence}
