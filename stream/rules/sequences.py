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
from stream.rules.model import Compiled, ConditionModel, Horizon
from stream.rules.verdict import Verdict
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


_new_link = tuple.__new__  # a Link without the generated constructor's call: one per matching event per evaluation


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
        steps: list[list[Link]] = [[_new_link(Link, (e, e.ts, None)) for e in self.sequence[0].select(recent)]]
        for step in self.sequence[1:]:
            before = steps[-1]
            links: list[Link] = []
            if before:  # else no chain reaches this step
                times = [link.event.ts for link in before]
                for e in step.select(recent):
                    i = bisect_left(times, e.ts) - 1
                    if i >= 0 and (self.within is None or e.ts - times[i] <= self.within):
                        links.append(_new_link(Link, (e, before[i].first, before[i])))
            steps.append(links)
        return steps

    def compile(self) -> Compiled:
        chains, lookback, reason = self.chains, self.lookback, self._reason

        def judged(steps: list[list[Link]], now: int) -> Verdict:
            holds, deadline = cover([(link.event.ts, link.first + lookback) for link in steps[-1]], now)
            return Verdict(holds, reason, deadline, steps, now)

        nothing = judged([[] for _ in self.sequence], 0)  # no first step in the lookback: the same verdict at any time

        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            steps = chains(profile.history, now)
            return judged(steps, now) if steps[0] else nothing

        return evaluate

    def _reason(self, steps: list[list[Link]], now: int) -> str:
        return self._story(steps, now)[0]

    def _story(self, steps: list[list[Link]], now: int) -> tuple[str, list[Event]]:
        """The reason at ``now`` and the chain it names (the latest-starting complete one; none when it fails)."""
        done = [link for link in steps[-1] if link.event.ts <= now < link.first + self.lookback]  # not empty: it holds
        if done:
            chain = max(done, key=lambda link: link.first).events()
            return f"{self.label}: from {iso(chain[0].ts)} to {iso(chain[-1].ts)}", chain
        reached = sum(1 for links in steps if any(link.event.ts <= now for link in links))
        return f"{self.label}: {reached} of {len(steps)} steps done", []

    def details(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> dict[str, Any]:
        """The condition as written and the events of the chain that completes it."""
        return super().details(profile, now, verdicts) | {"chain": [event_json(e) for e in self._story(self.chains(profile.history, now), now)[1]]}

    def lookback_ms(self) -> int:
        return self.lookback

    def properties(self) -> set[str]:
        return set().union(*(step.where for step in self.sequence))

    def event_windows(self) -> dict[str, Horizon]:
        return {step.event: self.lookback for step in self.sequence}
