"""Latency at a fixed rate: from the collector accepting an event to its segment change on the outbound topic.

A collector and one worker run in a fresh namespace with the ten bench rules.
The load generator sends ``rate`` events/s for ``duration_s`` (open loop, in
``/v1/batch`` requests of ``batch`` events), each the first order of a new
customer, so each makes its customer enter ``recent_buyers``. An event's
acceptance is when the collector's 200 reached the load generator (the
collector answers once Kafka acknowledged the event); its change arrives when a
consumer of the segment-changes topic receives it. A warm-up of a few hundred
events first takes the cold start out. Events never accepted or whose change
did not arrive within ``timeout_s`` after the last send count as infinitely late.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stream.bench import loadgen, workload
from stream.bench.engine import Env
from stream.bench.errors import BenchError
from stream.bench.percentiles import summary
from stream.bench.progress import Progress
from stream.config import Settings

WARMUP_EVENTS = 200
#: Longest a consume call may hold records it already has (it waits to fill its batch): a bound on
#: what the measuring adds to each change's arrival.
POLL_S = 0.005


class ChangeReader:
    """Arrival times (epoch s) of ``entered`` changes of the latency segment, by customer, as a consumer sees them."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"bench-latency-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self.consumer.assign([TopicPartition(settings.changes_topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)])
        self.arrived: dict[str, float] = {}

    def poll(self, seconds: float) -> None:
        """Receive for ``seconds``; each change is stamped when ``consume`` hands it over, so that call
        must return as soon as records are there: it waits for its ``num_messages`` until its timeout."""
        end = time.monotonic() + seconds
        while True:
            for message in self.consumer.consume(num_messages=1000, timeout=min(max(end - time.monotonic(), 0), POLL_S)):
                if message.error():
                    continue
                at = time.time()
                change = orjson.loads(message.value())
                if change["segment"] == workload.LATENCY_SEGMENT and change["change"] == "entered":
                    self.arrived.setdefault(change["customer_id"], at)
            if time.monotonic() >= end:
                return

    def close(self) -> None:
        self.consumer.close()


def bodies(run: str, events: int, batch: int) -> list[loadgen.Body]:
    """``/v1/batch`` requests of ``batch`` latency events each (see :func:`stream.bench.workload.latency_event`)."""
    out = []
    for start in range(0, events, batch):
        ids = range(start, min(start + batch, events))
        data = orjson.dumps({"batch": [workload.latency_event(i, run) for i in ids]})
        out.append(loadgen.Body("/v1/batch", data, len(ids)))
    return out


def latencies(result: loadgen.Result, arrived: dict[str, float], run: str, batch: int) -> tuple[list[float], int]:
    """Milliseconds from acceptance to arrival for every event whose change arrived, and how many did not.

    Body ``k`` of ``result`` holds events ``k * batch`` to ``(k + 1) * batch - 1`` (see :func:`bodies`).
    """
    measured: list[float] = []
    missing = 0
    for k, accepted in enumerate(result.accepted_at):
        for i in range(k * batch, (k + 1) * batch):
            customer = workload.latency_customer(i, run)
            if accepted is not None and customer in arrived:
                measured.append((arrived[customer] - accepted) * 1000)
            else:
                missing += 1
    return measured, missing


def measure(env: Env, rate: float, duration_s: float, batch: int, progress: Progress, timeout_s: float = 60.0) -> dict[str, Any]:
    """p50/p95/p99 acceptance-to-change latency at ``rate`` events/s for ``duration_s`` s."""
    settings = env.fresh("latency")
    started = time.time()
    procs = [env.start(settings, "collector"), env.start(settings, "worker")]
    url = f"http://127.0.0.1:{settings.collector_port}"
    reader = ChangeReader(settings)
    try:
        env.wait_http(f"{url}/health", procs)
        env.wait_workers(settings, procs[1:], since_ms=started * 1000)
        progress.say(f"latency: warm-up, {WARMUP_EVENTS} events")
        warm = f"warm{uuid.uuid4().hex[:6]}"
        loadgen.run(loadgen.Plan(url, bodies(warm, WARMUP_EVENTS, 10), concurrency=4))
        _wait(reader, lambda: sum(c.startswith(warm) for c in reader.arrived) >= WARMUP_EVENTS, timeout_s, "the warm-up's changes")
        events = max(batch, int(rate * duration_s) // batch * batch)
        run = f"lat{uuid.uuid4().hex[:6]}"
        progress.say(f"latency: {events:,} events at {rate:,.0f}/s in batches of {batch}")
        generator = loadgen.LoadGenerator(loadgen.Plan(url, bodies(run, events, batch), rate=rate / batch)).start()
        try:
            while not generator.done():
                env.check_alive(procs)
                reader.poll(0.2)
                progress.update(f"{sum(c.startswith(run) for c in reader.arrived):,}/{events:,} changes arrived")
            result = generator.result(timeout=60)
        finally:
            generator.stop()
        accepted = sum(1 for a in result.accepted_at if a is not None) * batch
        try:
            _wait(reader, lambda: sum(c.startswith(run) for c in reader.arrived) >= accepted, timeout_s, "the changes")
        except BenchError:
            pass  # the ones still missing count as infinitely late
    finally:
        reader.close()
        env.stop(procs)
        env.cleanup(settings.namespace)
    measured, missing = latencies(result, reader.arrived, run, batch)
    figures: dict[str, Any] = {
        "rate": rate,
        "achieved_rate": result.events / result.elapsed,
        "duration_s": duration_s,
        "batch_size": batch,
        "events": events,
        "refused_requests": sum(n for status, n in result.statuses.items() if status != "200"),
        "latency_ms": summary(measured, missing),
    }
    return figures


def _wait(reader: ChangeReader, done: Any, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        reader.poll(0.2)
