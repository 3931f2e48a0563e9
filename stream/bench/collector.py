"""Collector throughput: events/s through ``segstream collector`` into Kafka, single events and batches.

One collector process in a fresh namespace (no worker); the load generator
(:mod:`stream.bench.loadgen`, another process) keeps ``concurrency`` requests in
flight for ``duration_s``: first one event per request to its call's endpoint
(``/v1/track``, ``/v1/identify``, ``/v1/page``), then ``batch`` events per
``/v1/batch`` request. An event counts once the collector answered 200, i.e.
once Kafka acknowledged it.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.bench import loadgen, workload
from stream.bench.engine import Env
from stream.bench.progress import Progress
from stream.state.profile import now_ms


def single_bodies(records: list[dict[str, Any]]) -> list[loadgen.Body]:
    """One request per event, to the endpoint of its call type."""
    return [loadgen.Body(f"/v1/{r['type']}", orjson.dumps(workload.http_event(r)), 1) for r in records]


def batch_bodies(records: list[dict[str, Any]], size: int) -> list[loadgen.Body]:
    """``/v1/batch`` requests of ``size`` events each (the last one may hold fewer)."""
    return [
        loadgen.Body("/v1/batch", orjson.dumps({"batch": [workload.http_event(r) for r in records[i : i + size]]}), len(records[i : i + size]))
        for i in range(0, len(records), size)
    ]


def measure(env: Env, duration_s: float, batch: int, concurrency: int, progress: Progress) -> dict[str, Any]:
    """Run the collector alone; requests/s and events/s for single events and for batches of ``batch``."""
    settings = env.fresh("collector")
    records = workload.generate(events=20_000, customers=2_500, now=now_ms(), seed=11)
    collector = env.start(settings, "collector")
    url = f"http://127.0.0.1:{settings.collector_port}"
    try:
        env.wait_http(f"{url}/health", [collector])
        out: dict[str, Any] = {"duration_s": duration_s, "concurrency": concurrency}
        for mode, bodies in (("single", single_bodies(records)), ("batch", batch_bodies(records, batch))):
            progress.say(f"collector: {mode} requests for {duration_s:g}s, {concurrency} in flight")
            result = loadgen.run(loadgen.Plan(url, bodies, concurrency=concurrency, duration_s=duration_s))
            env.check_alive([collector])
            out[mode] = {
                "requests": result.requests,
                "events": result.events,
                "requests_per_s": result.requests / result.elapsed,
                "events_per_s": result.events / result.elapsed,
                "failed": {k: v for k, v in result.statuses.items() if k != "200"},
            }
        out["batch"]["batch_size"] = batch
        return out
    finally:
        env.stop([collector])
        env.cleanup(settings.namespace)

