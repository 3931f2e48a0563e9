"""Keeping the cyclic garbage collector's pauses out of the event path.

A long-running segstream process holds ~150k objects from start-up alone
(modules, faust, river, the rules); each full collection walks all of them, a
~60 ms pause that lands on whatever batch is in flight. Everything alive once a
process has started is kept for its lifetime anyway, so it is moved out of the
collector's reach (``gc.freeze``); later collections only walk what came after.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move every object alive now into the permanent generation (never scanned again)."""
    gc.collect()
    gc.freeze()
