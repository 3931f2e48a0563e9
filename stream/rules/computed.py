"""Computed traits: profile facts that are not traits, read wherever a trait is, by a ``$`` name.

===================  ==============================================================
``$revenue``         lifetime revenue: the sum of every event's ``revenue`` (else ``total``)
``$first_seen``      time of the customer's earliest event, epoch ms
``$last_seen``       time of the customer's latest event, epoch ms
``$count.<Event>``   lifetime count of ``<Event>`` (a track event's name, ``page`` or
                     ``screen``; the rest of the name after ``$count.``), 0 if never
===================  ==============================================================

Lifetime facts are not limited by the history the profile keeps. Times are
epoch ms, so relative dates apply: "last seen more than 30 days ago" is
``{trait: $last_seen, older_than: 30d}``. Trait names starting with ``$`` are
reserved for these.

>>> computed_trait("$count.Order Completed")(Profile("c", counts={"Order Completed": 2}))
2
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream.state.profile import Profile

#: The prefix of every computed trait's name.
PREFIX = "$"
#: The prefix of lifetime event counts: ``$count.Order Completed``.
COUNT_PREFIX = "$count."
#: The computed traits that are times in epoch ms (relative dates read them as such, whatever their size).
TIMES = frozenset({"$first_seen", "$last_seen"})
#: The computed traits with fixed names and how each is read.
COMPUTED: dict[str, Callable[[Profile], Any]] = {
    "$revenue": lambda profile: profile.revenue,
    "$first_seen": lambda profile: profile.first_seen,
    "$last_seen": lambda profile: profile.last_seen,
}


def computed_trait(name: str) -> Callable[[Profile], Any]:
    """How to read computed trait ``name`` from a profile; ``ValueError`` listing the computed traits when unknown."""
    if name in COMPUTED:
        return COMPUTED[name]
    event = name.removeprefix(COUNT_PREFIX)
    if name.startswith(COUNT_PREFIX) and event:
        return lambda profile: profile.counts.get(event, 0)
    known = ", ".join([*COMPUTED, f"{COUNT_PREFIX}<Event Name>"])
    raise ValueError(f"unknown computed trait {name!r}; use one of {known} ('$' names are reserved for these)")
