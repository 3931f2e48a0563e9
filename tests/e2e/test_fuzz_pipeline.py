"""Hostile input end to end: the real collector and worker processes, the real broker and Redis.

Hypothesis-generated hostile requests go through the collector, hostile raw records
straight onto the events topic; then every record on the topic is either counted as an
event or dead-lettered, the dead-letter topic holds exactly as many records as the
``dead_letter:*`` counters say, every event the collector acknowledged is on the topic,
no batch failed (no ``processing_error``), and both processes still run. (Records are
counted by reading the topics: Tansu's high watermarks count batches, not records.)

Identity routing (alias, identify with both ids, matched traits) and enrichment are left
out so that the worker writes no records of its own to the events topic and the counts
are exact.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stream.config import Settings
from stream.ingest.collector import PATHS
from stream.ingest.events import BATCH
from stream.worker.processor import Message, Rejected, expand, parse
from tests.e2e.conftest import make_settings
from tests.e2e.engine import Engine
from tests.e2e.harness import produce, wait_until
from tests.unit.test_fuzz_collector import AUTH, BODY_MUTATIONS, WRITE_KEY, encode, hostile_event, hostile_values, weighted
from tests.unit.test_fuzz_worker import REASONS, hostile_message

#: One request (and up to two raw records) per example.
EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate], database=None)
#: Records that make the worker write records of its own to the events topic.
ROUTING = {"alias", "merge_out", "merge_in", "claim"}


@pytest.fixture
def engine(base_settings: Settings) -> Iterator[Engine]:
    """Collector and worker of a fresh namespace: one write key, no rate limit, no identity matching, no enrichment."""
    fresh = make_settings(base_settings, write_keys=WRITE_KEY, rate_limit=0, match_traits="", enrichment="")
    eng = Engine(fresh).start("collector", "worker")
    yield eng
    eng.stop()


@st.composite
def unrouted_event(draw: st.DrawFn, kind: str | None = None) -> Any:
    """A hostile event that, if accepted, links no ids (so the worker routes nothing)."""
    kind = kind or draw(st.sampled_from(["track", "identify", "page", "screen", "group"]))
    event = draw(hostile_event(kind))
    if event.get("type") == "identify":
        event.pop("anonymousId", None)
    return draw(weighted((8, st.just(event)), (1, hostile_values)))


@st.composite
def unrouted_request(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str], int]:
    """(path, body, headers, events in it) of a hostile request to any event path but alias."""
    path = draw(st.sampled_from(sorted(p for p, kind in PATHS.items() if kind != "alias")))
    if PATHS[path] == BATCH:
        events = draw(st.lists(unrouted_event(), max_size=5))
        body: Any = {"batch": events, "context": draw(st.sampled_from([{}, None, {"traits": [1]}, {"a": 1}]))}
    else:
        events = [draw(unrouted_event(PATHS[path]))]
        body = events[0]
    raw, headers = BODY_MUTATIONS[draw(st.sampled_from(["none"] * 10 + sorted(BODY_MUTATIONS)))](encode(body))
    return f"/v1/{path}", raw, {"Content-Type": "application/json", **AUTH, **headers}, len(events)


def unrouted(message: Message) -> bool:
    """Whether the worker routes nothing for this raw record."""
    try:
        _, item = parse(message)
    except Rejected:
        return True
    record = item.record
    routes = record["type"] in ROUTING or (record["type"] == "identify" and record.get("anonymousId") is not None)
    return not routes


def topic_records(
    settings: Settings, topic: str, expected: int, events: Callable[[bytes | None, bytes | None], int] = lambda key, value: 1
) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` as (key, value): read until ``expected`` events came (``events`` counts
    a record's), then 2 s more for any extra."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"count-{topic}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    records: list[tuple[bytes | None, bytes | None]] = []

    def read(seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = consumer.poll(0.05)
            if msg is not None and not msg.error():
                records.append((msg.key(), msg.value()))
        return sum(events(key, value) for key, value in records) >= expected

    try:
        wait_until(lambda: read(0.5), 60, f"{expected} records on {topic}")
        read(2.0)
        return records
    finally:
        consumer.close()


def dead_letter_counts(engine: Engine) -> dict[str, int]:
    counters = engine.redis().hgetall(f"{engine.settings.namespace}:stats")
    return {k.decode().partition(":")[2]: int(v) for k, v in counters.items() if k.startswith(b"dead_letter:")}


def test_hostile_input_is_all_counted_and_nothing_crashes(engine: Engine) -> None:
    s = engine.settings
    accepted = 0
    raw_records: list[Message] = []
    with requests.Session() as http:

        @EXAMPLES
        @given(request=unrouted_request(), messages=st.lists(hostile_message(), max_size=2))
        def send(request: tuple[str, bytes, dict[str, str], int], messages: list[Message]) -> None:
            nonlocal accepted
            path, raw, headers, events = request
            response = http.post(engine.collector_url + path, data=raw, headers=headers, timeout=30)
            assert response.status_code < 500, f"{response.status_code} {response.text[:300]}"
            body = response.json()
            assert response.status_code == 200 or (body["success"] is False and body["message"])
            accepted += events if response.status_code == 200 else body.get("accepted", 0)
            raw_records.extend(m for m in messages if unrouted(m) and len(m.value or b"") < 900_000)  # what Kafka takes

        send()
        assert http.get(f"{engine.collector_url}/health").json() == {"status": "ok"}
    # A record that became a 4 MB dead letter, which Kafka refused: the worker's agent died of it.
    raw_records.append(Message(0, 0, b"nul", b"\x00" * 700_000))
    produce(s, s.events_topic, [(m.key, m.value or b"") for m in raw_records])
    accepted += sum(len(expand(m)) for m in raw_records)  # a JSON array is read as an envelope: each entry counts

    def settled() -> bool:
        dead = dead_letter_counts(engine)
        return engine.stat("events") + sum(dead.values()) >= accepted

    wait_until(settled, 90, f"{accepted} records counted (stats: {dead_letter_counts(engine)}; worker log: {engine.worker_log()})")
    dead = dead_letter_counts(engine)
    assert engine.stat("events") + sum(dead.values()) == accepted
    def events(key: bytes | None, value: bytes | None) -> int:
        return len(expand(Message(0, 0, key, value)))

    assert sum(events(*record) for record in topic_records(s, s.events_topic, accepted, events)) == accepted
    assert "processing_error" not in dead, engine.worker_log()
    assert set(dead) <= REASONS | {"too_late"}
    letters = [orjson.loads(value) for _, value in topic_records(s, s.dead_letter_topic, sum(dead.values()))]
    assert len(letters) == sum(dead.values())
    assert Counter(letter["reason"] for letter in letters) == dead
    assert any(letter["truncated"] for letter in letters)  # the 700 KB record, kept as the start of its bytes
    assert engine.procs["worker"].popen.poll() is None, engine.worker_log()
