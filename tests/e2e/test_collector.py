"""The collector as a process, fed by the unmodified official Segment SDK, against the real broker."""

from __future__ import annotations

import gzip
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from segment.analytics import Client
from segment.analytics.request import APIError

from stream.config import Settings
from stream.envelope import partition_for, unpack
from stream.kafka import client_config
from stream.state.profile import parse_time
from tests.e2e.harness import Proc, TopicReader, api_headers, free_port, http_json, wait_http, wait_until

WRITE_KEY = "e2e-write-key"
AUTH = {"Authorization": "Basic ZTJlLXdyaXRlLWtleTo="}  # base64("e2e-write-key:")


def start_collector(name: str, settings: Settings) -> Proc:
    proc = Proc(name, settings, ["collector"]).start()
    try:
        wait_http(f"http://127.0.0.1:{settings.collector_port}/health")
    except AssertionError:
        proc.stop()
        raise AssertionError(f"the collector did not come up; its log:\n{proc.log()}") from None
    return proc


@pytest.fixture
def collector(settings: Settings) -> Iterator[str]:
    """A collector process accepting only WRITE_KEY; yields its URL."""
    proc = start_collector("collector", settings.model_copy(update={"write_keys": WRITE_KEY}))
    yield f"http://127.0.0.1:{settings.collector_port}"
    proc.stop()


@pytest.fixture
def reader(settings: Settings) -> Iterator[TopicReader]:
    topic = TopicReader(settings, settings.events_topic)
    yield topic
    topic.close()


def keyed_records(reader: TopicReader, count: int, timeout: float = 30.0) -> list[tuple[bytes, dict[str, Any]]]:
    """The first ``count`` events of the events topic as (key, decoded event), in offset order per key
    (an envelope gives each of its events with its own key)."""
    records: list[tuple[bytes, dict[str, Any]]] = []

    def enough() -> bool:
        msg = reader.consumer.poll(0.1)
        if msg is not None and not msg.error():
            records.extend(unpack(msg.key(), msg.value()))  # type: ignore[arg-type]
        return len(records) >= count

    wait_until(enough, timeout, f"{count} records on the events topic", interval=0)
    return records


def test_official_sdk_events_reach_the_topic(collector: str, reader: TopicReader) -> None:
    client = Client(WRITE_KEY, host=collector, sync_mode=True)
    before = time.time() * 1000
    _, identify = client.identify("alice", {"plan": "pro", "email": "a@example.com"})
    _, track = client.track("alice", "Order Completed", {"revenue": 42.5})
    _, page = client.page(anonymous_id="anon-1", category="Docs", name="Pricing", properties={"path": "/pricing"})
    errors: list[Exception] = []
    batching = Client(WRITE_KEY, host=collector, gzip=True, on_error=lambda exc, _batch: errors.append(exc))
    _, screen = batching.screen("bob", name="Home")
    batching.shutdown()
    assert errors == []

    records = keyed_records(reader, 4)
    by_id = {value["messageId"]: (key, value) for key, value in records}
    sent = {m["messageId"]: m for m in (identify, track, page, screen)}
    assert set(by_id) == set(sent)
    for message_id, (key, value) in by_id.items():
        msg = sent[message_id]
        assert key == (msg.get("userId") or msg["anonymousId"]).encode()
        assert value["type"] == msg["type"]
        assert isinstance(value["ts"], int) and before - 5000 <= value["ts"] <= time.time() * 1000 + 5000
        assert value["ts"] == parse_time(value["timestamp"]) and value["timestamp"].endswith("Z")
        assert value["originalTimestamp"] and value["sentAt"] and value["receivedAt"]
        assert value["context"]["library"]["name"] == "analytics-python"
        assert "writeKey" not in value
    assert by_id[identify["messageId"]][1]["traits"] == {"plan": "pro", "email": "a@example.com"}
    assert by_id[track["messageId"]][1]["event"] == "Order Completed"
    assert by_id[track["messageId"]][1]["properties"] == {"revenue": 42.5}
    pricing = by_id[page["messageId"]][1]
    assert (pricing["name"], pricing["category"], pricing["properties"]) == ("Pricing", "Docs", {"path": "/pricing"})
    assert "userId" not in pricing
    assert by_id[screen["messageId"]][1]["name"] == "Home"


def test_sdk_with_unknown_write_key_gets_401(collector: str) -> None:
    with pytest.raises(APIError) as refused:
        Client("not-the-key", host=collector, sync_mode=True).track("alice", "Signed Up")
    assert refused.value.status == 401 and "unknown write key" in refused.value.message


def test_malformed_event_gets_400_naming_the_field(collector: str, reader: TopicReader, settings: Settings) -> None:
    body = {"batch": [{"type": "track", "userId": "u", "properties": {}}, {"type": "track", "userId": "u", "event": "Ok"}]}
    status, payload = http_json("POST", f"{collector}/v1/batch", body, AUTH)
    assert status == 400
    assert payload["accepted"] == 1
    assert [(e["index"], e["field"]) for e in payload["errors"]] == [(0, "batch[0].event")]
    ((key, value),) = keyed_records(reader, 1)
    assert (key, value["event"]) == (b"u", "Ok")
    status, stats = http_json("GET", f"{collector}/stats", headers=api_headers(settings))
    assert stats["rejected_events"] == {"invalid_field": 1} and stats["accepted"] == {"track": 1}


def test_gzip_batch_over_raw_http(collector: str, reader: TopicReader) -> None:
    events = [{"type": "identify", "anonymousId": f"anon-{i}", "traits": {"i": i}} for i in range(3)]
    data = gzip.compress(orjson.dumps({"batch": events, "writeKey": WRITE_KEY, "context": {"ip": "10.0.0.1"}}))
    request = urllib.request.Request(
        f"{collector}/v1/import", data=data, method="POST", headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert (response.status, orjson.loads(response.read())) == (200, {"success": True})
    records = keyed_records(reader, 3)
    assert sorted(key for key, _ in records) == [b"anon-0", b"anon-1", b"anon-2"]
    assert all(value["context"] == {"ip": "10.0.0.1"} for _, value in records)


def test_batches_travel_as_envelopes_in_the_partition_kafka_gives_each_key(collector: str, settings: Settings) -> None:
    customers = [f"shopper-{i}" for i in range(24)]
    body = {"batch": [{"type": "track", "userId": c, "event": "Viewed", "properties": {"n": n}} for n in range(3) for c in customers]}
    assert http_json("POST", f"{collector}/v1/batch", body, AUTH)[0] == 200
    consumer = Consumer(client_config(settings, **{"group.id": "envelope-check", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(settings.events_topic, p, 0) for p in range(settings.partitions)])
    events: list[tuple[int, bytes, int]] = []
    envelopes_seen = 0

    def read() -> bool:
        nonlocal envelopes_seen
        msg = consumer.poll(0.1)
        if msg is not None and not msg.error():
            envelopes_seen += msg.key() is None
            events.extend((msg.partition(), key, record["properties"]["n"]) for key, record in unpack(msg.key(), msg.value()))
        return len(events) >= len(body["batch"])

    wait_until(read, 30, "the batch's events on the events topic", interval=0)
    consumer.close()
    assert envelopes_seen >= 1 and envelopes_seen < len(events)
    # librdkafka's murmur2_random partitioner, asked directly, agrees with the envelopes' partitions.
    producer = Producer(client_config(settings, partitioner="murmur2_random"))
    librdkafka: dict[bytes, int] = {}
    for c in customers:
        producer.produce(settings.changes_topic, key=c.encode(), value=b"{}", on_delivery=lambda err, msg: librdkafka.update({msg.key(): msg.partition()}))
    producer.flush(30)
    assert {key: partition for partition, key, _ in events} == librdkafka == {c.encode(): partition_for(c.encode(), settings.partitions) for c in customers}
    for c in customers:  # each customer's events in the order sent
        assert [n for _, key, n in events if key == c.encode()] == [0, 1, 2]


def test_kafka_unreachable_gets_503(settings: Settings) -> None:
    down = settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "produce_timeout_s": 2, "collector_port": free_port()}
    )
    proc = start_collector("collector-no-kafka", down)
    try:
        url = f"http://127.0.0.1:{down.collector_port}"
        status, payload = http_json("POST", f"{url}/v1/track", {"userId": "u", "event": "E"}, AUTH)
        assert (status, payload["success"], payload["error"]) == (503, False, "event store unavailable, retry")
        with pytest.raises(APIError) as refused:
            Client(WRITE_KEY, host=url, sync_mode=True).track("u", "E")
        assert refused.value.status == 503
        status, stats = http_json("GET", f"{url}/stats", headers=api_headers(down))
        assert stats["accepted"] == {} and stats["rejected_requests"] == {"kafka_unavailable": 2}
        assert proc.popen is not None and proc.popen.poll() is None, proc.log()
    finally:
        proc.stop()
    assert proc.popen.returncode == 0, proc.log()
