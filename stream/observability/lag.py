"""Consumer lag of a worker, from what it fetched and what it committed — never from high watermarks.

For each events-topic partition the worker owns:

* **position**: the next offset its consumer will hand out, i.e. one past the last
  record it fetched (aiokafka's fetch position);
* **committed**: the offset the group committed for it, i.e. one past the last record
  whose batch was processed (faust commits every second after processing);
* **lag** = position − committed: records this worker has fetched but not yet
  processed and committed — the work in flight inside the process.

It does not count records still waiting at the broker: that needs the partition's
end offset (ListOffsets latest), which the local broker Tansu reports wrongly. A
worker falling behind shows as a lag that stays high (its buffers stay full) and as
``segstream_consumer_position`` advancing slower than your producers' offsets.

>>> partition_lag({0: 120, 1: 50, 2: None}, {0: 100, 1: None, 2: 7})
{0: 20, 1: 50, 2: 0}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def partition_lag(positions: Mapping[int, int | None], committed: Mapping[int, int | None]) -> dict[int, int]:
    """Lag per partition: position − committed (no commit yet: from offset 0; no position yet: 0)."""
    lag = {}
    for partition, position in positions.items():
        done = committed.get(partition)
        lag[partition] = 0 if position is None else max(0, position - (done or 0))
    return lag


def consumer_offsets(consumer: Any, topic: str) -> tuple[dict[int, int | None], dict[int, int | None]]:
    """``(positions, committed)`` per owned partition of ``topic``, read from a running faust consumer.

    Positions come from aiokafka's subscription state in the consumer thread (plain
    attribute reads), committed offsets from faust's record of its own commits.
    Both are empty until the consumer has an assignment.
    """
    try:
        assignment = consumer.assignment()
        thread_consumer = consumer._thread._consumer
        state = thread_consumer._subscription.subscription.assignment if thread_consumer is not None else None
    except (AttributeError, RuntimeError):  # not started yet, or stopping
        return {}, {}
    positions: dict[int, int | None] = {}
    committed: dict[int, int | None] = {}
    for tp in list(assignment):
        if tp.topic != topic:
            continue
        tp_state = state.state_value(tp) if state is not None else None
        positions[tp.partition] = tp_state.position if tp_state is not None and tp_state.has_valid_position else None
        committed[tp.partition] = consumer._committed_offset.get(tp)
    return positions, committed
