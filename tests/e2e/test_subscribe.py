"""`stream.client.subscribe` on the real broker: filtering, timeout, and a clear error for a missing topic."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from stream.client import SegstreamError, subscribe
from stream.config import Settings
from stream.output.changes import Change


def test_subscribe_from_beginning_filters_by_segment_and_stops_when_idle(settings: Settings) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for seq, segment in enumerate(["a", "b", "a"], 1):
        producer.produce(settings.changes_topic, key=b"u", value=Change("u", segment, "entered", 0, seq, "r").to_bytes())
    producer.flush(10)
    got = list(subscribe(settings, segment="a", from_beginning=True, timeout=2))
    assert [(c["segment"], c["seq"]) for c in got] == [("a", 1), ("a", 3)]


def test_subscribe_to_a_missing_topic_says_what_to_do(base_settings: Settings) -> None:
    with pytest.raises(SegstreamError, match="SEGSTREAM_NAMESPACE"):
        list(subscribe(base_settings.model_copy(update={"namespace": "no-such-namespace"}), timeout=1))
