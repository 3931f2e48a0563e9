"""Sliding-window arithmetic over one customer's matching events, pure.

Window edge: an event at ``ts`` is inside the window of length ``window`` at
time ``now`` iff ``now - window < ts <= now``. It starts counting at ``ts``
(a future-dated event counts from then on) and stops counting at exactly
``ts + window``. So ``within: 7d`` evaluated at ``now`` sees an event of
``now - 7d + 1ms`` but not one of ``now - 7d``.

Between two of these edges the window's contents are fixed, so a measure can
only change at an edge: :func:`sweep` measures the window at ``now`` and walks
the later edges until the comparison flips, which gives the exact deadline.
The window is always a contiguous run of the time-ordered candidates, so each
measure is kept incrementally (``push`` on the new side, ``pop`` on the old).
:func:`sweep_count` does the same for counts with index arithmetic, and once no
future event is left to enter, jumps straight to the answer: a count ``>= N``
that holds stops holding exactly when the N-th newest event leaves.

Absences and sequences hold on a union of half-open spans ``[begin, end)`` of
time, one per trigger or completed chain: :func:`cover` tells whether ``now``
is inside and when that changes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, Protocol

from stream.state.profile import Event

_TS = attrgetter("ts")


def later_than(history: list[Event], start: int) -> list[Event]:
    """The entries of the time-ordered ``history`` later than ``start`` (a window's contents from ``now - window`` on)."""
    return history[bisect_right(history, start, key=_TS) :]


class Aggregate(Protocol):
    """A measure kept over a sliding run ``[lo, hi)`` of candidates: push at ``hi``, pop at ``lo``.

    It is built over the candidates' values (aligned with their times).
    """

    def push(self, i: int) -> None: ...

    def pop(self, i: int) -> None: ...

    def value(self) -> Any: ...


class Sum:
    """The exact sum of the numeric values in the window (``None`` values add nothing).

    Each value is scaled to an integer by one common power of two, so adding and
    removing never rounds; the result is the correctly rounded float (an ``int``
    when all values are whole), the same as ``math.fsum`` of the window.
    """

    __slots__ = ("scaled", "shift", "total")

    def __init__(self, values: Sequence[int | float | None]) -> None:
        self.total = 0
        if all(v is None or type(v) is int for v in values):  # whole numbers are already integers: no scaling
            self.shift = 0
            self.scaled = [0 if v is None else v for v in values]
            return
        ratios = [(0, 1) if v is None else v.as_integer_ratio() for v in values]
        self.shift = max((d.bit_length() for _, d in ratios), default=1) - 1
        self.scaled = [n << (self.shift - d.bit_length() + 1) for n, d in ratios]

    def push(self, i: int) -> None:
        self.total += self.scaled[i]

    def pop(self, i: int) -> None:
        self.total -= self.scaled[i]

    def value(self) -> int | float:
        return self.total / (1 << self.shift) if self.shift else self.total


class Extreme:
    """The smallest (``largest=False``) or largest numeric value in the window; ``None`` when it has none."""

    __slots__ = ("values", "largest", "queue")

    def __init__(self, values: Sequence[int | float | None], largest: bool) -> None:
        self.values = values
        self.largest = largest
        self.queue: deque[int] = deque()  # indices whose values are monotone: the extreme first

    def push(self, i: int) -> None:
        value = self.values[i]
        if value is None:
            return
        queue, values = self.queue, self.values
        if self.largest:
            while queue and values[queue[-1]] <= value:
                queue.pop()
        else:
            while queue and values[queue[-1]] >= value:
                queue.pop()
        queue.append(i)

    def pop(self, i: int) -> None:
        if self.queue and self.queue[0] == i:
            self.queue.popleft()

    def value(self) -> int | float | None:
        return self.values[self.queue[0]] if self.queue else None


class Distinct:
    """How many different values (``None`` excluded) are in the window."""

    __slots__ = ("values", "counts")

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = values
        self.counts: dict[Any, int] = {}

    def push(self, i: int) -> None:
        key = self.values[i]
        if key is not None:
            self.counts[key] = self.counts.get(key, 0) + 1

    def pop(self, i: int) -> None:
        key = self.values[i]
        if key is not None:
            left = self.counts[key] - 1
            if left:
                self.counts[key] = left
            else:
                del self.counts[key]

    def value(self) -> int:
        return len(self.counts)


def sweep(
    times: Sequence[int], aggregate: Aggregate, window: int, now: int, test: Callable[[Any], bool]
) -> tuple[Any, bool, int | None, int]:
    """Measure the window at ``now`` and find when ``test`` of the measure next flips.

    ``times`` are the candidates' times, ascending, all later than ``now - window``
    (future ones included). Returns ``(measure, holds, deadline, inside)``:
    ``deadline`` is the first time after ``now`` at which ``test`` gives the other
    answer (``None``: never, without new events) and ``inside`` how many
    candidates are in the window at ``now`` (the first ones).
    """
    push, pop, value = aggregate.push, aggregate.pop, aggregate.value
    n = len(times)
    hi = inside = bisect_right(times, now)
    for i in range(hi):
        push(i)
    measure = value()
    holds = test(measure)
    lo = 0
    while lo < hi or hi < n:
        if lo < hi and (hi == n or times[lo] + window <= times[hi]):
            at = times[lo] + window
        else:
            at = times[hi]
        while hi < n and times[hi] <= at:
            push(hi)
            hi += 1
        while lo < hi and times[lo] + window <= at:
            pop(lo)
            lo += 1
        if test(value()) != holds:
            return measure, holds, at, inside
    return measure, holds, None, inside


def sweep_count(
    times: Sequence[int], window: int, now: int, low: float, high: float
) -> tuple[int, bool, int | None, int]:
    """:func:`sweep` for the number of events, holding while ``low <= count <= high``."""
    n = len(times)
    hi = inside = bisect_right(times, now)
    holds = low <= inside <= high
    lo = 0
    while hi < n:  # future events still to enter: walk the edges
        at = times[lo] + window if lo < hi and times[lo] + window <= times[hi] else times[hi]
        hi = bisect_right(times, at, hi)
        lo = bisect_right(times, at - window, lo, hi)
        if (low <= hi - lo <= high) != holds:
            return inside, holds, at, inside
    # Only departures are left: the count falls from n - lo to 0, oldest events first.
    if holds:
        return inside, holds, (times[n - int(low)] + window if low > 0 else None), inside
    if n - lo <= high or high < 0:  # below the range, or the range is below 0, and only falling
        return inside, holds, None, inside
    last_out = times[n - int(high) - 1]  # when the count first drops to <= high ...
    landed = n - bisect_right(times, last_out)  # ... several may leave together
    return inside, holds, (last_out + window if landed >= low else None), inside


def cover(spans: Iterable[tuple[int, int]], now: int) -> tuple[bool, int | None]:
    """Whether ``now`` lies in the union of the half-open ``spans`` ``[begin, end)``, and the first later time it does not.

    Returns ``(holds, deadline)``: holding, the end of the covered stretch around
    ``now`` (spans that touch join); not holding, the next begin (``None``: none).

    >>> cover([(0, 5), (5, 9), (12, 20)], 3)
    (True, 9)
    """
    live = sorted([(begin, end) for begin, end in spans if end > now and begin < end])
    if not live:
        return False, None
    if live[0][0] > now:
        return False, live[0][0]
    reach = now
    for begin, end in live:
        if begin > reach:
            break
        reach = max(reach, end)
    return True, reach
