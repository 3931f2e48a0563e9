"""Which history entries a condition reads: an event name and ``where`` property filters.

``{event: Product Viewed, where: {category: {eq: Shoes}}}`` accepts entries
named ``Product Viewed`` whose ``category`` equals ``"Shoes"``.

* ``event``: the event name (exact, case-sensitive): a track event's name, or
  ``page`` / ``screen``. ``$any`` accepts every entry (track, page and screen).
* ``where``: property filters, ``{currency: {eq: USD}, revenue: {gt: 0}}``, each
  one operator of :mod:`stream.rules.operators`; all must pass.

Event windows select their events this way, and so do both sides of an absence
and every step of a sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from pydantic import Field

from stream.rules.model import RuleModel
from stream.rules.operators import ValueTest
from stream.state.profile import Event, iso

#: The ``event`` value that accepts every history entry.
ANY_EVENT = "$any"


class EventFilter(RuleModel):
    """Entries named ``event`` whose properties pass every ``where`` filter.

    >>> EventFilter(event="page", where={"name": {"eq": "Checkout"}}).text
    'page where name == "Checkout"'
    """

    event: str = Field(min_length=1)
    where: dict[str, ValueTest] = {}

    @cached_property
    def accepts(self) -> Callable[[Event], bool] | None:
        """The compiled name and ``where`` test of one entry (``None`` without ``where``: the name alone decides)."""
        if not self.where:
            return None
        name = None if self.event == ANY_EVENT else self.event
        filters = tuple((prop, test.predicate) for prop, test in self.where.items())

        def accepts(event: Event) -> bool:
            if name is not None and event.name != name:
                return False
            props = event.props
            for prop, predicate in filters:
                if not predicate(props.get(prop)):
                    return False
            return True

        return accepts

    @cached_property
    def noun(self) -> str:
        """The event as it reads in reasons: its name, or ``any event``."""
        return "any event" if self.event == ANY_EVENT else self.event

    @cached_property
    def text(self) -> str:
        """The filter as it reads in reasons, e.g. ``Order Completed where currency == "USD"``."""
        where = " and ".join(f"{prop} {test.text}" for prop, test in self.where.items())
        return f"{self.noun} where {where}" if where else self.noun

    @cached_property
    def select(self) -> Callable[[list[Event]], list[Event]]:
        """The entries of a list of events this filter accepts, in order (the list itself when it accepts all)."""
        accepts = self.accepts
        name = self.event
        if accepts is not None:
            if name == ANY_EVENT:
                return lambda events: [e for e in events if accepts(e)]
            return lambda events: [e for e in events if e.name == name and accepts(e)]  # the name first: fewer calls
        if name == ANY_EVENT:
            return lambda events: events
        return lambda events: [e for e in events if e.name == name]


def event_json(event: Event) -> dict[str, Any]:
    """A history entry as explanations show it: ``{"at": ISO time, "event": name, "properties": {...}}``."""
    return {"at": iso(event.ts), "event": event.name, "properties": event.props}
