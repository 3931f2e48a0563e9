"""End-to-end throughput: events/s from the SDK's request to the worker having applied them.

A collector and ``workers`` worker processes run together in a fresh namespace.
Once the workers own every partition, the load generator sends the workload in
``/v1/batch`` requests as fast as the collector takes them; the clock runs from
its first request to the moment the workers' counter reaches the number of
events. The collector's own rate in the same run is reported beside it, and the
memberships are read afterwards for the SQL check.
"""

from __future__ import annotations

import time
from typing import Any

from stream.bench import loadgen
from stream.bench.collector import batch_bodies
from stream.bench.engine import Env
from stream.bench.progress import Progress
from stream.bench.sql import SEGMENTS
from stream.bench.worker import WorkerRun, follow, processed, wait_outbox_empty
from stream.state.profile import now_ms


def measure(env: Env, records: list[dict[str, Any]], batch: int, concurrency: int, progress: Progress) -> WorkerRun:
    """Send ``records`` through a collector and one worker; events/s end to end."""
    settings = env.fresh("e2e")
    started = time.time()
    procs = [env.start(settings, "collector"), env.start(settings, "worker")]
    url = f"http://127.0.0.1:{settings.collector_port}"
    try:
        env.wait_http(f"{url}/health", procs)
        progress.say("end to end: waiting for the worker to own all partitions")
        env.wait_workers(settings, procs[1:], since_ms=started * 1000)
        total = len(records)
        progress.say(f"end to end: {total:,} events in batches of {batch}, {concurrency} requests in flight")
        generator = loadgen.LoadGenerator(loadgen.Plan(url, batch_bodies(records, batch), concurrency=concurrency)).start()
        try:
            t1, _, _ = follow(env, settings, procs, total, time.monotonic(), 0, progress)
            finished = time.time() - (time.monotonic() - t1)
            result = generator.result(timeout=120)
        finally:
            generator.stop()
        wait_outbox_empty(env, settings)
        redelivered = processed(env.stats(settings)) - total
        members_at = now_ms()
        members = env.members(settings, SEGMENTS)
        profile_members = env.profile_members(settings, SEGMENTS)
    finally:
        env.stop(procs)
    seconds = max(finished - result.started, 1e-9)
    figures = {
        "events": total,
        "batch_size": batch,
        "seconds": seconds,
        "events_per_s": total / seconds,
        "collector_events_per_s": result.events / result.elapsed,
        "retried_requests": sum(n for status, n in result.statuses.items() if status != "200"),
        "redelivered": redelivered,
    }
    progress.say(f"end to end: {figures['events_per_s']:,.0f} events/s")
    return WorkerRun(settings, figures, members, profile_members, members_at)
