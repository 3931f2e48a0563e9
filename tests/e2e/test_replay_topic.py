"""`segstream replay topic:NAME --out-topic T` on the real broker: history in, the live system's changes out."""

from __future__ import annotations

import subprocess
import sys

import orjson
from confluent_kafka import Producer

from stream.config import Settings
from tests.e2e.harness import ROOT, TopicReader, settings_env


def test_replay_reads_a_topic_and_publishes_changes(settings: Settings) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "partitioner": "murmur2_random"})
    for day in (1, 2):
        record = {"type": "track", "event": "Order Completed", "userId": "r1", "timestamp": f"2026-01-0{day}T00:00:00Z"}
        producer.produce(settings.events_topic, key=b"r1", value=orjson.dumps(record))
    producer.produce(settings.events_topic, key=b"r2", value=b"not json")
    producer.flush(10)
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", f"topic:{settings.events_topic}",
         "--rules", str(ROOT / "rules" / "behaviour.yaml"), "--until", "2026-03-01T00:00:00Z",
         "--out-topic", settings.changes_topic],
        env=settings_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 customers, 4 changes, 1 rejected records" in done.stdout
    reader = TopicReader(settings, settings.changes_topic)
    records = reader.wait_for(lambda r: len(r) >= 4, 30, "the replayed changes")
    assert [(r["segment"], r["change"], r["at"]) for r in sorted(records, key=lambda r: r["seq"])] == [
        ("recent_buyers", "entered", "2026-01-01T00:00:00.000Z"),
        ("repeat_buyers", "entered", "2026-01-02T00:00:00.000Z"),
        ("repeat_buyers", "exited", "2026-01-31T00:00:00.000Z"),
        ("recent_buyers", "exited", "2026-02-01T00:00:00.000Z"),
    ]
    reader.close()
