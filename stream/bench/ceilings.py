"""The ceilings segstream's figures are compared with, measured on the same machine in the same run.

* :func:`kafka_consumer`: a bare confluent-kafka consumer reading the same
  pre-loaded events topic and parsing every value with orjson: what one Python
  process can take out of this broker with no segmentation at all.
* :func:`redis_benchmark`: ``redis-benchmark`` (Debian package redis-tools)
  against the same redis-server, pipelined (``-P 16``): the server's own
  throughput for the commands segstream uses most (HGET/HSET-like, ZADD, GET/SET).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
import uuid
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from stream.bench.errors import BenchError
from stream.bench.progress import Progress
from stream.config import Settings

#: The redis-benchmark tests run (their mean is the ceiling).
REDIS_TESTS = "set,get,hset,zadd,incr"


def kafka_consumer(settings: Settings, records: int, progress: Progress, timeout_s: float = 120.0) -> dict[str, Any]:
    """Events/s of a bare consumer + orjson over the first ``records`` records of the events topic
    (envelopes count their events).

    The clock starts with the ``consume`` call that returned the first records
    (the connection and group-less assignment are left out, as the worker's join is).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-ceiling-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(settings.events_topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)])
    n = read = 0
    first = None
    end = time.monotonic() + timeout_s
    try:
        while read < records and time.monotonic() < end:
            called = time.monotonic()
            # Ask for no more than are left, or the last call waits out its timeout for records that never come.
            for message in consumer.consume(num_messages=min(10_000, records - read), timeout=0.5):
                if message.error():
                    continue
                decoded = orjson.loads(message.value())
                n += len(decoded) if isinstance(decoded, list) else 1  # an envelope's events, or one event
                read += 1
            if n and first is None:
                first = called  # the clock starts with the fetch that brought the first records
            progress.update(f"bare consumer: {read:,}/{records:,} records, {n:,} events")
        finished = time.monotonic()
    finally:
        consumer.close()
    if read < records or first is None:
        raise BenchError(f"the bare consumer read only {read:,} of {records:,} records from {settings.events_topic} in {timeout_s:.0f}s")
    seconds = max(finished - first, 1e-9)
    return {"events": n, "seconds": seconds, "events_per_s": n / seconds}


def redis_benchmark(host: str, port: int, requests: int, pipeline: int = 16) -> dict[str, Any]:
    """``redis-benchmark -P pipeline`` ops/s per test and their mean."""
    binary = shutil.which("redis-benchmark") or shutil.which("redis-benchmark", path="/usr/bin:/usr/local/bin")
    if binary is None:
        raise BenchError("redis-benchmark is not installed: `sudo apt-get install -y redis-tools` (scripts/system-packages.sh does it)")
    command = [binary, "-h", host, "-p", str(port), "-P", str(pipeline), "-n", str(requests), "-r", "100000", "-t", REDIS_TESTS, "--csv"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    tests = parse_csv(done.stdout)
    if not tests:
        raise BenchError(f"could not read redis-benchmark's output:\n{done.stdout}")
    return {
        "pipeline": pipeline,
        "requests": requests,
        "tests": tests,
        "ops_per_s": sum(tests.values()) / len(tests),
        "command": " ".join(["redis-benchmark", *command[1:]]),
    }


def parse_csv(text: str) -> dict[str, float]:
    """Test name -> requests/s from ``redis-benchmark --csv`` output (with or without the header line).

    >>> parse_csv('"test","rps","avg_latency_ms"\\n"SET","869565.19","0.831"\\n')
    {'SET': 869565.19}
    """
    out: dict[str, float] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[0] != "test":
            try:
                out[row[0].split(" ")[0]] = float(row[1])
            except ValueError:
                continue
    return out
