"""Start-up objects leave the cyclic GC's reach."""

from __future__ import annotations

import gc

from stream.heap import freeze_startup_objects


def test_objects_alive_at_start_up_are_frozen_and_later_ones_are_not() -> None:
    kept = [object() for _ in range(10)]
    try:
        freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the interpreter and test session alone hold thousands
        later = [[i] for i in range(100)]
        assert gc.get_freeze_count() == frozen and later
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0 and kept
