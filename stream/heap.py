"""Keeping the cyclic garbage collector's work out of the event path.

A long-running segstream process holds ~150k objects from start-up alone
(modules, faust, river, the rules); each full collection walks all of them, a
~60 ms pause that lands on whatever batch is in flight. Everything alive once a
process has started is kept for its lifetime anyway, so it is moved out of the
collector's reach (``gc.freeze``); later collections only walk what came after.

A batch allocates about ten containers per event (decoded events, profiles,
verdicts) that live until the batch is done and are then freed by reference
counting, not by the cyclic collector. At Python's default thresholds (700, 10, 10)
they are traversed and promoted several times while they live; the thresholds
below let a batch of thousands of events finish first (the worker's CPU per event
fell ~6 % in the in-process benchmark).
"""

from __future__ import annotations

import gc

#: Allocations before a young collection, and how many of each generation before the next.
THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze every object alive now into the permanent generation and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
