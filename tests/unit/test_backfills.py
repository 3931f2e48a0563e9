"""Reading a backfill's progress as workers record it (``ns:backfill:{version}``)."""

from __future__ import annotations

from stream.bench.progress import bar
from stream.state.backfills import BackfillProgress, done_field, running_field, running_value


def test_progress_counts_done_partitions_and_the_running_workers_share() -> None:
    fields = {
        done_field(0): b"10",
        done_field(1): b"12",
        running_field([3, 2]).encode(): running_value(scanned=50, evaluated=7),
    }
    progress = BackfillProgress.from_fields(fields)
    assert progress.done == {0: 10, 1: 12}
    assert progress.running == {(2, 3): (50, 7)}
    assert progress.evaluated == 29
    assert not progress.complete(4)
    # Two partitions done, two at half their scan of 100 profiles: 3 of 4.
    assert progress.fraction(4, profiles=100) == 0.75


def test_a_stale_running_field_does_not_count_twice_once_its_partitions_are_done() -> None:
    fields = {done_field(p): "1" for p in range(4)} | {running_field([2, 3]): running_value(5, 1).decode()}
    progress = BackfillProgress.from_fields(fields)
    assert progress.complete(4)
    assert progress.fraction(4, profiles=100) == 1.0


def test_nothing_recorded_is_nothing_done() -> None:
    progress = BackfillProgress.from_fields({})
    assert progress.fraction(8, profiles=0) == 0.0 and not progress.complete(8) and progress.evaluated == 0


def test_bar() -> None:
    assert bar(0.5, width=10) == "[#####.....]  50.0%"
    assert bar(2.0, width=4) == "[####] 100.0%" and bar(-1, width=4) == "[....]   0.0%"
