"""Measure how late time-driven changes are: deadline -> `exited` decided, on a real worker.

Starts a worker in a fresh namespace against the configured Kafka and Redis
(`make services` first), gives N customers two views each under a rule
"2+ views within W", and reads the `exited` changes: each one's lateness is its
`at` minus the exact deadline (the older view's time + W). Prints p50/p95/p99/max.

    .venv/bin/python scripts/timer_lateness.py --customers 500 --window 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from stream.config import Settings
from stream.kafka import ensure_topics
from stream.state import keys
from stream.state.profile import iso, now_ms, parse_time

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--window", type=float, default=5.0, help="window in seconds")
    args = parser.parse_args()
    rules = Path(tempfile.mkdtemp()) / "timers.yaml"
    window_ms = int(args.window * 1000)
    rules.write_text(
        f"segments:\n  - name: hot\n    condition: {{event: View, within: {window_ms}ms, count: {{gte: 2}}}}\n"
    )
    settings = Settings().model_copy(update={"namespace": f"bench{uuid.uuid4().hex[:8]}", "rules_dir": rules})
    ensure_topics(settings)
    env = dict(os.environ, SEGSTREAM_NAMESPACE=settings.namespace, SEGSTREAM_RULES=str(rules), SEGSTREAM_LOG_LEVEL="WARNING")
    worker = subprocess.Popen([sys.executable, "-m", "stream.cli", "worker"], env=env, cwd=ROOT)
    try:
        wait_for_worker(settings)
        deadlines = produce(settings, args.customers, window_ms)
        lateness = collect(settings, deadlines, timeout=args.window + 60)
    finally:
        worker.terminate()
        worker.wait(30)
    lateness.sort()
    q = statistics.quantiles(lateness, n=100) if len(lateness) > 1 else lateness * 99
    print(f"timer lateness over {len(lateness)} window exits (deadline -> change decided), ms:")
    print(f"  p50 {q[49]:.0f}   p95 {q[94]:.0f}   p99 {q[98]:.0f}   max {lateness[-1]:.0f}")
    return 0 if len(lateness) == args.customers else 1


def wait_for_worker(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    print("waiting for the worker to join its group ...", file=sys.stderr)
    for _ in range(600):
        beats = [orjson.loads(v) for v in client.hvals(keys.workers(settings.namespace))]
        if {p for b in beats for p in b["partitions"]} == set(range(settings.partitions)):
            return
        time.sleep(0.1)
    raise SystemExit("the worker did not take its partitions within 60 s")


def produce(settings: Settings, customers: int, window_ms: int) -> dict[str, int]:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "partitioner": "murmur2_random"})
    deadlines: dict[str, int] = {}
    for i in range(customers):
        cid = f"c{i}"
        first = now_ms()
        for ts in (first, first + 1):
            record = {"type": "track", "event": "View", "userId": cid, "ts": ts, "timestamp": iso(ts)}
            producer.produce(settings.events_topic, key=cid.encode(), value=orjson.dumps(record))
        deadlines[cid] = first + window_ms  # the older view leaves the window then
        producer.poll(0)
    producer.flush(30)
    return deadlines


def collect(settings: Settings, deadlines: dict[str, int], timeout: float) -> list[float]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.namespace + "-bench"})
    consumer.assign([TopicPartition(settings.changes_topic, p, 0) for p in range(settings.partitions)])
    lateness: dict[str, float] = {}
    end = time.monotonic() + timeout
    while len(lateness) < len(deadlines) and time.monotonic() < end:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        change = orjson.loads(msg.value())
        if change["change"] == "exited":
            lateness[change["customer_id"]] = parse_time(change["at"]) - deadlines[change["customer_id"]]
            if len(lateness) % 100 == 0:
                print(f"{len(lateness)}/{len(deadlines)} exits", file=sys.stderr)
    print(file=sys.stderr)
    consumer.close()
    return list(lateness.values())


if __name__ == "__main__":
    sys.exit(main())
