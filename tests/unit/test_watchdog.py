"""The partition-stall watchdog: its bookkeeping, and what it does to a consumer that stalls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import pytest

from stream.worker import watchdog
from stream.worker.watchdog import StallWatch, watch


def test_a_partition_with_waiting_records_and_no_delivery_is_stalled_after_the_grace_period() -> None:
    w = StallWatch(stall_after_s=10)
    w.assign([0, 1], now=100)
    assert w.stalled({0: 5, 1: 5}, {0: 0, 1: 0}, now=109) == []  # still in its grace period
    w.record(0, 4, now=105)  # partition 0 delivered its records up to the end
    assert w.stalled({0: 5, 1: 5}, {0: 0, 1: 0}, now=111) == [1]


def test_nothing_waiting_is_not_a_stall() -> None:
    w = StallWatch(stall_after_s=10)
    w.assign([0, 1], now=0)
    w.record(0, 9, now=1)
    # Partition 0 delivered offset 9 and the end's lower bound is 10; partition 1 was committed at 7.
    assert w.stalled({0: 10, 1: 7}, {0: None, 1: 7}, now=100) == []
    assert w.stalled({0: 11, 1: 8}, {0: None, 1: 7}, now=100) == [0, 1]


def test_time_spent_on_a_batch_or_without_kafka_is_not_waiting_time() -> None:
    w = StallWatch(stall_after_s=10)
    w.assign([0], now=0)
    w.working([], now=0)
    assert w.stalled({0: 5}, {0: 0}, now=60) == []  # a batch held up (Redis away) is no stall
    w.waiting(now=60)
    assert w.stalled({0: 5}, {0: 0}, now=69) == []
    assert w.stalled({0: 5}, {0: 0}, now=70) == [0]


def test_a_reassigned_partition_forgets_what_it_delivered_before() -> None:
    w = StallWatch(stall_after_s=10)
    w.assign([0], now=0)
    w.record(0, 50, now=1)
    w.assign([], now=2)
    w.assign([0], now=3)
    # Committed at 20 by the other owner meanwhile: records 20.. are waiting for this one.
    assert w.stalled({0: 51}, {0: 20}, now=20) == [0]
    w.restart_grace([0], now=20)
    assert w.stalled({0: 51}, {0: 20}, now=25) == []


class TP(NamedTuple):
    topic: str
    partition: int


class StuckConsumer:
    """The part of faust's consumer the watchdog uses, with partition 1 never delivering."""

    def __init__(self, ends: dict[int, int]) -> None:
        self.ends = ends
        self._active_partitions: set[TP] = set()
        self._paused_partitions = {TP("events", 1)}
        self._buffered_partitions: set[TP] = set()
        self._committed_offset = {TP("events", 0): 3, TP("events", 1): 2}
        self._read_offset: dict[TP, int] = {}
        self.resumed: list[TP] = []
        self.seeks = 0

    def _new_topicpartition(self, topic: str, partition: int) -> TP:
        return TP(topic, partition)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp.partition] for tp in tps}

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        self.resumed += list(tps)
        self._paused_partitions.clear()

    async def perform_seek(self) -> None:
        self.seeks += 1


class App:
    def __init__(self, consumer: StuckConsumer) -> None:
        self.consumer = consumer


class Exited(Exception):
    pass


def _exit(code: int) -> Any:
    raise Exited(code)


def test_the_watchdog_seeks_a_stalled_partition_back_then_exits_when_it_stays_stalled(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(watchdog, "CHECK_INTERVAL_S", 0.01)
    monkeypatch.setattr(watchdog.os, "_exit", _exit)
    consumer = StuckConsumer({0: 4, 1: 9})
    state = StallWatch(stall_after_s=0.05)
    state.record(0, 3, now=0)

    async def main() -> None:
        task = asyncio.create_task(watch(App(consumer), "events", state, lambda: [0, 1]))

        async def deliver_partition_0() -> None:
            while not task.done():
                state.record(0, 3, now=time.monotonic())
                await asyncio.sleep(0.005)

        feeder = asyncio.create_task(deliver_partition_0())
        with pytest.raises(Exited) as exited:
            await asyncio.wait_for(task, 5)
        feeder.cancel()
        assert exited.value.args == (watchdog.EXIT_STALLED,)

    asyncio.run(main())
    assert consumer.seeks == 1, "one seek back to the committed offsets before giving up"
    assert TP("events", 1) in consumer.resumed
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("partitions [1]" in m and "paused=True" in m for m in warned), warned
    assert any("partitions [1] still receive no records" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_the_watchdog_leaves_a_partition_alone_once_the_seek_unstuck_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "CHECK_INTERVAL_S", 0.01)
    monkeypatch.setattr(watchdog.os, "_exit", _exit)
    consumer = StuckConsumer({0: 10})
    state = StallWatch(stall_after_s=0.05)

    async def unstick() -> None:
        consumer.seeks += 1
        consumer.ends[0] = 10
        state.record(0, 9, now=time.monotonic())  # the seek made the waiting records flow again

    consumer.perform_seek = unstick  # type: ignore[method-assign]

    async def main() -> None:
        task = asyncio.create_task(watch(App(consumer), "events", state, lambda: [0]))
        await asyncio.sleep(0.5)
        assert not task.done(), "the watchdog gave up although the partition delivered again"
        task.cancel()

    asyncio.run(main())
    assert consumer.seeks == 1
