"""Start-up objects leave the cyclic GC's reach; young collections come less often."""

from __future__ import annotations

import gc

from stream.heap import THRESHOLDS, tune_gc


def test_objects_alive_at_start_up_are_frozen_and_later_ones_are_not() -> None:
    kept = [object() for _ in range(10)]
    thresholds = gc.get_threshold()
    try:
        tune_gc()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the interpreter and test session alone hold thousands
        later = [[i] for i in range(100)]
        assert gc.get_freeze_count() <= frozen and later  # frozen objects may still be freed, none is added
        assert gc.get_threshold() == THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == 0 and kept
