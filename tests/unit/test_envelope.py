"""Envelopes: Kafka's partitioner, the format, the grouping, and the collector's coalescing sink."""

from __future__ import annotations

import asyncio
import doctest
from typing import Any

import orjson
import pytest

from stream import envelope
from stream.envelope import MAX_BYTES, MAX_EVENTS, envelopes, murmur2, pack, packable, partition_for, unpack
from stream.ingest.sink import EnvelopeSink
from stream.kafka import PARTITION_UA, KafkaUnavailable
from stream.state import pipeline
from stream.worker.processor import Message, expand, parse, slices

# Kafka's own test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java), as signed ints.
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("module", [envelope, pipeline])
def test_docstring_examples(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("key", list(KAFKA_MURMUR2))
def test_murmur2_matches_kafka(key: bytes) -> None:
    signed = murmur2(key) - (1 << 32) if murmur2(key) >= 1 << 31 else murmur2(key)
    assert signed == KAFKA_MURMUR2[key]


def test_partition_is_the_positive_hash_modulo_the_partitions() -> None:
    assert partition_for(b"21", 8) == (-973932308 & 0x7FFFFFFF) % 8
    assert {partition_for(b"c%d" % i, 8) for i in range(200)} == set(range(8))


def test_pack_and_unpack_round_trip_keys_and_events() -> None:
    events = [(b"c1", {"type": "page", "n": 1}), (b"\xc3\xa9t\xc3\xa9", {"type": "track", "event": "x"})]
    value = pack([(key, orjson.dumps(event)) for key, event in events])
    assert unpack(None, value) == events
    assert unpack(b"k", b'{"type": "page"}') == [(b"k", {"type": "page"})]  # a single event
    assert unpack(None, b'[1, ["", {}], ["k"]]') == [(None, 1), (None, ["", {}]), (None, ["k"])]  # not pairs


def test_only_keys_json_needs_no_escape_for_are_packable() -> None:
    assert packable(b"customer-1") and packable("é".encode())
    assert not packable(b'a"b') and not packable(b"a\\b") and not packable(b"a\nb")
    assert not packable(b"\xff") and not packable(b"") and not packable(None)


def test_envelopes_keep_order_per_partition_and_respect_the_caps() -> None:
    records = [(b"c%d" % (i % 40), b'{"i":%d}' % i) for i in range(3 * MAX_EVENTS)]
    groups = envelopes(records, 4)
    assert sorted(i for _, group in groups for i in group) == list(range(len(records)))
    for partition, group in groups:
        assert len(group) <= MAX_EVENTS and group == sorted(group)
        assert {partition_for(records[i][0], 4) for i in group} == {partition}
    big = [(b"c1", b"x" * (MAX_BYTES // 2)) for _ in range(3)]
    assert [group for _, group in envelopes(big, 4)] == [[0], [1], [2]]


def test_worker_expands_an_envelope_into_its_events_and_slices_at_record_boundaries() -> None:
    value = pack([(b"a", b'{"type":"page","ts":1}'), (b"b", b'{"type":"page","ts":2}'), (b"a", b'{"type":"page","ts":3}')])
    envelope = Message(2, 7, None, value)
    events = expand(envelope)
    assert [(m.key, m.index, m.offset) for m in events] == [(b"a", 0, 7), (b"b", 1, 7), (b"a", 2, 7)]
    assert [(cid, item.ts, item.index) for cid, item in map(parse, events)] == [("a", 1, 0), ("b", 2, 1), ("a", 3, 2)]
    single = Message(2, 8, b"c", b'{"type":"page","ts":4}')
    assert expand(single) == [single]
    assert expand(Message(2, 9, None, b"[not json")) == [Message(2, 9, None, b"[not json")]
    counts: list[int] = []
    sizes = [[m.offset for m in part] for part in slices([envelope, single, envelope], 4, counts)]
    assert sizes == [[7, 7, 7, 8], [7, 7, 7]]  # an envelope is never split, even over the limit
    assert counts == [3, 1, 3]
    assert [[m.offset for m in part] for part in slices([envelope], 2, [])] == [[7, 7, 7]]


class FakeProducer:
    """Records what the sink queues; fails records whose value contains ``fail``."""

    def __init__(self, partitions: int = 4) -> None:
        self.queued: list[tuple[str, int, bytes | None, bytes]] = []
        self.partition_count = partitions

    def queue(self, records: list[tuple[str, int, bytes | None, bytes]]) -> asyncio.Future[None]:
        self.queued += records
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if any(b"fail" in value for *_, value in records):
            future.set_exception(KafkaUnavailable("broker said no"))
        else:
            future.set_result(None)
        return future

    async def partitions(self, topic: str, timeout: float) -> int:
        return self.partition_count


def test_sink_coalesces_concurrent_requests_into_envelopes_and_fails_only_the_affected_ones() -> None:
    producer = FakeProducer()
    sink = EnvelopeSink(producer, "events", linger_s=0.01)  # type: ignore[arg-type]
    keys = [b"c%d" % i for i in range(40)]
    bad_key = next(k for k in keys if partition_for(k, 4) == 3)

    def request(n: int, failing: bool = False) -> list[tuple[str, bytes | None, bytes]]:
        # Partition 3 gets only the failing request's one event, which the broker refuses.
        return [("events", key, b'{"n":%d}' % n) for key in keys if partition_for(key, 4) != 3] + (
            [("events", bad_key, b'{"m":"fail"}')] if failing else []
        )

    async def scenario() -> list[Any]:
        return await asyncio.gather(
            sink.send_many(request(1)),
            sink.send_many(request(2)),
            sink.send_many(request(3, failing=True)),
            sink.send_many([("changes", b"c1", b"{}")]),
            return_exceptions=True,
        )

    outcomes = asyncio.run(scenario())
    assert outcomes[0] is None and outcomes[1] is None and outcomes[3] is None
    assert isinstance(outcomes[2], KafkaUnavailable)
    envelope_records = [r for r in producer.queued if r[0] == "events" and r[2] is None]
    assert {r[1] for r in envelope_records} == {0, 1, 2}  # one envelope per partition for all three requests
    carried = [key for r in envelope_records for key, _ in unpack(None, r[3])]
    assert len(carried) == 3 * len(request(1))
    assert [r for r in producer.queued if r[0] == "events" and r[2] is not None] == [("events", PARTITION_UA, bad_key, b'{"m":"fail"}')]
    assert ("changes", PARTITION_UA, b"c1", b"{}") in producer.queued


def test_sink_drain_writes_what_waits_for_the_linger() -> None:
    producer = FakeProducer()
    sink = EnvelopeSink(producer, "events", linger_s=60)  # type: ignore[arg-type]

    async def scenario() -> None:
        sending = asyncio.create_task(sink.send_many([("events", b"c1", b"{}"), ("events", b"c1", b"{}")]))
        await asyncio.sleep(0)
        assert producer.queued == []
        await sink.drain()
        await sending

    asyncio.run(scenario())
    assert len(producer.queued) == 1 and producer.queued[0][2] is None
