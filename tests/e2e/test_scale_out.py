"""Scale-out: workers of one consumer group share the partitions; a killed worker's partitions and
timers move to the survivor, and the result equals a clean run.

Real Tansu broker and real redis-server; nothing mocked.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream.config import Settings
from stream.state import keys
from stream.state.profile import iso
from tests.e2e.chaos import (
    LAST_WORDS,
    RULES,
    Sender,
    all_profiles,
    check_exact,
    last_words_applied,
    owners,
    redis_client,
    sharing,
    start_workers,
    to_kafka,
)
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import wait_until


@pytest.mark.timeout(120)
def test_killed_worker_hands_partitions_and_timers_to_the_survivor(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path, RULES, partitions=8, batch_max=100)
    eng = Engine(settings)
    started_ms = time.time() * 1000
    workers = start_workers(eng, ["worker", "worker2"])
    sender: Sender | None = None
    try:
        split = wait_until(lambda: sharing(settings, workers, started_ms), 60, "two workers sharing the 8 partitions")
        victim, survivor = sorted(split, key=lambda w: -len(split[w]))  # the one with more partitions dies
        customers = [f"s{i:02d}" for i in range(48)]
        sender = Sender(customers, to_kafka(settings)).start()
        stored = wait_until(lambda: all_profiles(settings, customers), 30, "every customer's profile")
        # Customers of the victim fall silent: only timers can change them after the kill.
        silent = [c for c, p in stored.items() if p.partition in split[victim]][:8]
        assert len(silent) >= 4, f"too few customers on the victim's partitions {split[victim]}"
        sender.retire({c: LAST_WORDS for c in silent})
        wait_until(lambda: last_words_applied(settings, sender, silent), 20, "the silent customers' last events applied")
        workers[victim].kill()
        killed_ms = time.time() * 1000
        client = redis_client(settings)
        deadlines = {c: client.zscore(keys.timers(settings.namespace, stored[c].partition or 0), c) for c in silent}
        ahead = {c: d for c, d in deadlines.items() if d is not None and d > killed_ms}
        assert ahead, f"no silent customer has a deadline ahead at the kill: {deadlines}"

        def taken_over() -> bool:
            return owners(settings, killed_ms).get(survivor) == list(range(settings.partitions))

        wait_until(taken_over, 60, f"the survivor owning every partition (log: {workers[survivor].log_path})")
        taken_ms = time.time() * 1000
        time.sleep(1.0)  # events keep flowing to the survivor for a moment
        sender.stop()
        assert workers[survivor].alive(), f"the survivor exited: {workers[survivor].log_tail()}"

        outcome = check_exact(settings, sender.accepted, procs=workers.values())

        # Deadlines that fell while their owner was dead fired on the survivor, after it took over.
        fell = [c for c, d in ahead.items() if d < taken_ms]
        assert fell, f"no deadline fell between the kill and the takeover ({taken_ms - killed_ms:.0f} ms later)"
        for c in fell:
            after = iso(int(killed_ms))
            late = {(r["segment"], r["change"]) for r in outcome.changes if r["customer_id"] == c and r["at"] > after}
            assert ("burst", "exited") in late, f"{c}: no timer decision after the kill: {late}"
            assert "cart_abandoners" in outcome.expected[c] and "burst" not in outcome.expected[c]
        outcome.assert_events_counted_once()
    finally:
        if sender is not None:
            sender.abandon()
        eng.stop()
