"""Which segments an event can change: by its name, and by its age against the windows that read it.

An event re-evaluates only the segments whose conditions read its name (``$any``
reads every name), with the segments they refer to (see :mod:`stream.worker.step`).
A window reads only recent events: ``{event: X, within: 7d}`` evaluated at ``now``
never sees an event of ``now - 7d`` or older, nor does an absence past its
``expires`` or a sequence past its ``lookback``. Lifetime facts (``$count.X``,
``$revenue``, scores) read events of any age. So a segment's verdict at ``now``
stands through an event older than every window of it that reads the event's name:
when a step applies several events at one time, :meth:`Triggers.narrowed` leaves
out the segments already evaluated at that time that such an event cannot change.

>>> triggers = Triggers.build({"browsers": {"View": 7_000}, "vips": {"View": None}}, {"browsers": {"browsers"}, "vips": {"vips"}})
>>> sorted(triggers.affected("View")), sorted(triggers.narrowed("View", 8_000, {"browsers", "vips"}))
(['browsers', 'vips'], ['vips'])
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from stream.rules.filters import ANY_EVENT
from stream.rules.model import Horizon


@dataclass(frozen=True)
class _Reach:
    """The segments events of one name can change, and which of them they still can at each age."""

    segments: frozenset[str]
    #: The finite horizons of the segments reading the name, ascending.
    levels: tuple[int, ...]
    #: ``kept[i]``: the segments an event can change once ``i`` levels are at or below its age.
    kept: tuple[frozenset[str], ...]


@dataclass(frozen=True)
class Triggers:
    """Per event name, the segments an event can change; see the module docstring."""

    by_name: Mapping[str, _Reach]
    anything: _Reach
    needs: Mapping[str, frozenset[str]]

    @classmethod
    def build(cls, reads: Mapping[str, Mapping[str, Horizon]], needs: Mapping[str, Iterable[str]]) -> Triggers:
        """From each segment's horizons per event name it reads (with the segments it refers to)
        and the segments each one needs evaluated with it (itself and those it refers to)."""
        closure = {segment: frozenset(need) for segment, need in needs.items()}

        def reach(event: str) -> _Reach:
            horizons: dict[str, Horizon] = {}  # of the segments reading the name (or every name)
            for segment, window in reads.items():
                found = [window[key] for key in {event, ANY_EVENT} if key in window]
                if found:
                    horizons[segment] = None if None in found else max(found)  # type: ignore[type-var]
            levels = tuple(sorted({h for h in horizons.values() if h is not None}))

            def kept(age: int) -> frozenset[str]:
                return frozenset().union(*(closure[s] for s, h in horizons.items() if h is None or h > age))

            everything = frozenset().union(*(closure[s] for s in horizons))
            return _Reach(everything, levels, (everything, *(kept(level) for level in levels)))

        events = {name for window in reads.values() for name in window} - {ANY_EVENT}
        return cls({event: reach(event) for event in events}, reach(ANY_EVENT), closure)

    def affected(self, event: str) -> frozenset[str]:
        """The segments an event named ``event`` can change, with the segments they refer to."""
        return self.by_name.get(event, self.anything).segments

    def narrowed(self, event: str, age: int, fresh: AbstractSet[str]) -> frozenset[str]:
        """Of :meth:`affected`, those to re-evaluate after an event ``age`` ms old, when the
        segments in ``fresh`` were evaluated at the same time since the profile last changed
        otherwise: a fresh segment stays out when the event is too old for its windows
        and no segment re-evaluated refers to it."""
        reach = self.by_name.get(event, self.anything)
        kept = reach.kept[bisect_right(reach.levels, age)]
        if kept is reach.segments:  # young enough for every window
            return kept
        unknown = reach.segments - kept - fresh
        return kept.union(*(self.needs[s] for s in unknown)) if unknown else kept
