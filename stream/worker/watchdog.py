"""Partition-stall watchdog: notices an assigned partition whose events the agent no longer receives.

faust and aiokafka can, after a rebalance, keep a partition assigned yet never hand its
records to the agent (faust-streaming issues #629, #523: no fetch request, or records
fetched but never yielded). Nothing else would notice: the heartbeat reports the
partition as owned and its timers keep firing. The watchdog compares, per assigned
partition, the next offset the agent should see with a lower bound of the partition's end
(``ListOffsets(latest)``; Tansu answers the last batch's base offset + 1, never more than
the true end), and calls a partition stalled when records wait there and none arrived for
``stall_after_s``. :class:`StallWatch` is the pure bookkeeping; :func:`watch` runs it
against a faust consumer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stream.worker.processor import Message

log = logging.getLogger("stream.worker")

#: Seconds between two checks of the assigned partitions.
CHECK_INTERVAL_S = 2.0
#: Exit status of a worker that gave up on a stalled partition (EX_TEMPFAIL: restart me).
EXIT_STALLED = 75


@dataclass
class StallWatch:
    """When each assigned partition last delivered a record to the agent, and which one it was."""

    stall_after_s: float
    assigned: frozenset[int] = frozenset()
    #: partition -> (offset of the last record delivered, monotonic time of its delivery)
    delivered: dict[int, tuple[int, float]] = field(default_factory=dict)
    #: partition -> monotonic time since which it is assigned (or was last unstuck)
    since: dict[int, float] = field(default_factory=dict)
    #: whether the agent is processing a batch (then it is not waiting for records)
    busy: bool = False
    #: monotonic time the agent last finished a batch or the watch last lost sight of Kafka
    idle_since: float = 0.0

    def record(self, partition: int, offset: int, now: float) -> None:
        """The agent received record ``offset`` of ``partition``."""
        self.delivered[partition] = (offset, now)

    def working(self, batch: Iterable[Message], now: float) -> None:
        """The agent received ``batch`` and processes it."""
        last = {m.partition: m.offset for m in batch}  # per partition, the batch's last offset
        for partition, offset in last.items():
            self.record(partition, offset, now)
        self.busy = True

    def waiting(self, now: float) -> None:
        """The agent finished its batch and waits for records again (or Kafka was out of sight)."""
        self.busy = False
        self.idle_since = now

    def assign(self, partitions: Iterable[int], now: float) -> None:
        """The assignment is ``partitions``; newly assigned ones start their grace period."""
        current = frozenset(partitions)
        if current == self.assigned:
            return
        for p in current - self.assigned:
            self.since[p] = now
            self.delivered.pop(p, None)
        for p in self.assigned - current:
            self.since.pop(p, None)
            self.delivered.pop(p, None)
        self.assigned = current

    def stalled(self, ends: Mapping[int, int], committed: Mapping[int, int | None], now: float) -> list[int]:
        """Assigned partitions with records waiting (``ends``) and nothing delivered for ``stall_after_s``
        of the agent's waiting time (a batch held up by a Redis outage is not a stall)."""
        if self.busy:
            return []
        out = []
        for p in sorted(self.assigned):
            offset, at = self.delivered.get(p, (None, self.since.get(p, now)))
            if now - max(at, self.since.get(p, at), self.idle_since) < self.stall_after_s:
                continue
            nxt = offset + 1 if offset is not None else (committed.get(p) or 0)
            if ends.get(p, 0) > nxt:
                out.append(p)
        return out

    def restart_grace(self, partitions: Iterable[int], now: float) -> None:
        """Give ``partitions`` a new grace period (after an attempt to unstick them)."""
        for p in partitions:
            self.since[p] = now
            self.delivered.pop(p, None)


def _diagnose(consumer: Any, tps: Iterable[Any]) -> str:
    """What faust and aiokafka think of ``tps``, for the log (best effort, private attributes)."""
    lines = []
    try:
        subscription = consumer._thread._ensure_consumer()._fetcher._subscriptions.subscription
        states = subscription.assignment if subscription is not None else None
    except Exception:  # noqa: BLE001 - diagnostics only
        states = None
    for tp in tps:
        state = None
        if states is not None:
            try:
                state = states.state_value(tp)
            except Exception:  # noqa: BLE001 - diagnostics only
                state = None
        lines.append(
            f"{tp.topic}[{tp.partition}]: faust active={tp in (consumer._active_partitions or ())} "
            f"paused={tp in consumer._paused_partitions} buffered={tp in consumer._buffered_partitions} "
            f"committed={consumer._committed_offset.get(tp)} read={consumer._read_offset.get(tp)}; aiokafka "
            + (
                f"position={getattr(state, '_position', None)} highwater={getattr(state, 'highwater', None)} "
                f"paused={getattr(state, 'paused', None)} last_fetch_ms={getattr(state, 'timestamp', None)}"
                if state is not None
                else "no state"
            )
        )
    return "; ".join(lines)


async def watch(app: Any, topic: str, state: StallWatch, owned: Callable[[], list[int]]) -> None:
    """Check ``topic``'s assigned partitions forever; unstick stalled ones, exit if that fails.

    Unsticking resumes the partitions in faust and seeks every assigned partition back to
    its committed offset (faust's own recovery step): records are redelivered, and the
    processor's deduplication applies each once. A partition still stalled one grace period
    after that makes the worker exit with :data:`EXIT_STALLED`, so that a supervisor
    restarts it and the group moves its partitions, rather than leaving customers frozen.
    """
    attempted: set[int] = set()
    while True:
        await asyncio.sleep(CHECK_INTERVAL_S)
        now = time.monotonic()
        state.assign(owned(), now)
        # A partition counts as unstuck once it delivered again after the seek.
        attempted = {p for p in attempted if p in state.assigned and p not in state.delivered}
        if not state.assigned:
            continue
        consumer = app.consumer
        tps = {p: consumer._new_topicpartition(topic, p) for p in state.assigned}
        try:
            ends = await consumer.highwaters(*tps.values())
        except Exception as exc:  # noqa: BLE001 - Kafka away or rebalancing: check again later
            log.debug("stall check skipped: %r", exc)
            if not state.busy:
                state.waiting(time.monotonic())  # the agent cannot receive either: restart its clock
            continue
        committed = {p: consumer._committed_offset.get(tp) for p, tp in tps.items()}
        stalled = state.stalled({tp.partition: end for tp, end in ends.items()}, committed, time.monotonic())
        if not stalled:
            continue
        detail = _diagnose(consumer, [tps[p] for p in stalled])
        if attempted & set(stalled):
            log.error(
                "partitions %s still receive no records after a seek; exiting (code %d) so that they move: %s",
                stalled,
                EXIT_STALLED,
                detail,
            )
            logging.shutdown()
            os._exit(EXIT_STALLED)  # crash-only: uncommitted records are redelivered, the outbox republished
        log.warning(
            "partitions %s are assigned but their waiting records reach no agent for %.0fs; "
            "resuming them and seeking to the committed offsets: %s",
            stalled,
            state.stall_after_s,
            detail,
        )
        attempted |= set(stalled)
        state.restart_grace(stalled, time.monotonic())
        consumer.resume_partitions(tps.values())
        await consumer.perform_seek()
