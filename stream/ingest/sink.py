"""The collector's way into Kafka: accepted events coalesced into envelopes (see :mod:`stream.envelope`).

Requests arriving within ``linger`` of each other share envelopes: their events
are grouped by partition and written as one record per partition (at most
``MAX_EVENTS`` events each); a request is answered once every envelope holding
one of its events is acknowledged, and fails (503) if any of them failed. An
envelope of one event is written as a plain keyed record. Records for other
topics, and keys an envelope cannot carry, are produced as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from stream.envelope import envelopes, pack, packable
from stream.kafka import PARTITION_UA, AsyncProducer, KafkaUnavailable

#: Seconds the partition count of the events topic is trusted before it is read again.
PARTITIONS_TTL_S = 30.0
#: Events waiting for the linger after which they are written at once.
FLUSH_AT = 5_000


class EnvelopeSink:
    """Produces events-topic records as envelopes, coalescing requests for ``linger_s`` seconds."""

    def __init__(self, producer: AsyncProducer, topic: str, linger_s: float, timeout_s: float = 5.0) -> None:
        self.producer = producer
        self.topic = topic
        self.linger_s = linger_s
        self.timeout_s = timeout_s
        self._waiting: list[tuple[list[tuple[bytes, bytes]], asyncio.Future[None]]] = []
        self._waiting_events = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._partitions = (0, 0.0)
        self._reading: asyncio.Task[int] | None = None

    async def send_many(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        """Produce the records and return once all are acknowledged, else raise :class:`KafkaUnavailable`."""
        events: list[tuple[bytes, bytes]] = []
        others: list[tuple[str, bytes | None, bytes]] = []
        for topic, key, value in records:
            if topic == self.topic and packable(key):
                events.append((key, value))  # type: ignore[arg-type]
            else:
                others.append((topic, key, value))
        waits: list[asyncio.Future[None]] = []
        if others:
            waits.append(self.producer.queue([(topic, PARTITION_UA, key, value) for topic, key, value in others]))
        if events:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiting.append((events, future))
            self._waiting_events += len(events)
            if self._waiting_events >= FLUSH_AT:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self.linger_s, self._flush)
            waits.append(future)
        await asyncio.gather(*waits)

    async def drain(self) -> None:
        """Write what is waiting and wait for every write in progress (before the producer closes)."""
        self._flush()
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiting:
            task = asyncio.create_task(self._write(self._waiting))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
            self._waiting, self._waiting_events = [], 0

    async def _write(self, requests: list[tuple[list[tuple[bytes, bytes]], asyncio.Future[None]]]) -> None:
        records = [event for events, _ in requests for event in events]
        owner = [i for i, (events, _) in enumerate(requests) for _ in events]
        try:
            partitions = await self._partition_count()
        except KafkaUnavailable as exc:
            _settle([future for _, future in requests], exc)
            return
        # Flushes wake from the shared partition read in the order they began, and queue without awaiting:
        # a partition's records keep their order.
        groups = envelopes(records, partitions)
        acks = [self.producer.queue([self._record(partition, [records[i] for i in group])]) for partition, group in groups]
        outcomes = await asyncio.gather(*acks, return_exceptions=True)
        failed: dict[int, BaseException] = {}
        for (_, group), outcome in zip(groups, outcomes):
            if isinstance(outcome, BaseException):
                failed.update((owner[i], outcome) for i in group)
        for i, (_, future) in enumerate(requests):
            _settle([future], failed.get(i))

    def _record(self, partition: int, entries: list[tuple[bytes, bytes]]) -> tuple[str, int, bytes | None, bytes]:
        if len(entries) == 1:
            key, value = entries[0]
            return self.topic, PARTITION_UA, key, value
        return self.topic, partition, None, pack(entries)

    async def _partition_count(self) -> int:
        """The events topic's partition count: read at most every :data:`PARTITIONS_TTL_S`, one read at a time;
        a failed re-read keeps the count known before."""
        count, read_at = self._partitions
        if count and time.monotonic() - read_at < PARTITIONS_TTL_S:
            return count
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_partitions())
        return await asyncio.shield(self._reading)

    async def _read_partitions(self) -> int:
        try:
            async with asyncio.timeout(self.timeout_s):
                count = await self.producer.partitions(self.topic, self.timeout_s)
        except (KafkaUnavailable, TimeoutError) as exc:
            if not self._partitions[0]:
                raise KafkaUnavailable(f"cannot read the partitions of {self.topic}: {exc}") from exc
            count = self._partitions[0]
        finally:
            self._reading = None
        self._partitions = (count, time.monotonic())
        return count


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error if isinstance(error, KafkaUnavailable) else KafkaUnavailable(str(error)))
