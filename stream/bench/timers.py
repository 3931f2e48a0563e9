"""Timer lateness: how late time-driven changes are decided, deadline to change, on a real worker.

A worker runs in a fresh namespace with one rule, "2+ views within W". Each of
``customers`` customers gets two views at once, enters, and must exit exactly
when the older view leaves the window (its time + W) with no further event: a
timer. Each ``exited`` change's lateness is its ``at`` (when the worker decided
it) minus that deadline. ``scripts/timer_lateness.py`` runs this part alone.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stream.bench.engine import Env, encode
from stream.bench.errors import BenchError
from stream.bench.percentiles import summary
from stream.bench.progress import Progress
from stream.config import Settings
from stream.state.profile import iso, now_ms, parse_time


def rules_yaml(window_ms: int) -> str:
    """The timer part's one rule: at least two ``View`` events within ``window_ms``."""
    return f"segments:\n  - name: hot\n    condition: {{event: View, within: {window_ms}ms, count: {{gte: 2}}}}\n"


def measure(env: Env, customers: int, window_s: float, progress: Progress, timeout_s: float = 60.0) -> dict[str, Any]:
    """Lateness percentiles (ms) of ``customers`` window exits, ``window_s`` after their entry."""
    window_ms = int(window_s * 1000)
    rules_dir = env.root / "timer-rules"
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / "timers.yaml").write_text(rules_yaml(window_ms))
    settings = env.fresh("timers", rules_dir=rules_dir)
    started = time.time()
    worker = env.start(settings, "worker")
    try:
        progress.say("timers: waiting for the worker to own all partitions")
        env.wait_workers(settings, [worker], since_ms=started * 1000)
        deadlines = produce(env, settings, customers, window_ms)
        progress.say(f"timers: {customers:,} customers enter now and must exit {window_s:g}s later")
        lateness = collect(settings, deadlines, window_s + timeout_s, progress)
    finally:
        env.stop([worker])
        env.cleanup(settings.namespace)
    missing = len(deadlines) - len(lateness)
    return {"customers": customers, "window_s": window_s, "lateness_ms": summary(lateness, missing)}


def produce(env: Env, settings: Settings, customers: int, window_ms: int) -> dict[str, int]:
    """Two views per customer, now; returns each customer's exit deadline (epoch ms)."""
    deadlines: dict[str, int] = {}
    records = []
    for i in range(customers):
        cid = f"t{i}"
        first = now_ms()
        for ts in (first, first + 1):
            records.append({"type": "track", "event": "View", "userId": cid, "ts": ts, "timestamp": iso(ts)})
        deadlines[cid] = first + window_ms  # the older view leaves the window then
    env.produce(settings, encode(records))
    return deadlines


def collect(settings: Settings, deadlines: dict[str, int], timeout_s: float, progress: Progress) -> list[float]:
    """Lateness (ms) of each customer's ``exited`` change, read from the changes topic until all came or ``timeout_s``."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{settings.namespace}-bench", "enable.auto.commit": False})
    consumer.assign([TopicPartition(settings.changes_topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)])
    lateness: dict[str, float] = {}
    end = time.monotonic() + timeout_s
    try:
        while len(lateness) < len(deadlines) and time.monotonic() < end:
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if message.error():
                    continue
                change = orjson.loads(message.value())
                if change["change"] == "exited" and change["customer_id"] in deadlines:
                    lateness[change["customer_id"]] = float(parse_time(change["at"]) - deadlines[change["customer_id"]])
            progress.update(f"{len(lateness):,}/{len(deadlines):,} exits")
    finally:
        consumer.close()
    if not lateness:
        raise BenchError(f"no window exit arrived on {settings.changes_topic} within {timeout_s:.0f}s")
    return list(lateness.values())
