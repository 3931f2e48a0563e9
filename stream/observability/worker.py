"""The worker's own metrics and its small HTTP server (``/metrics``, ``/healthz``, ``/readyz``).

faust runs with its web server off; this aiohttp server listens on
``SEGSTREAM_WORKER_HOST:SEGSTREAM_WORKER_PORT`` (``0``: none). Every worker
process counts only what it did, so with several workers Prometheus sums them
(``sum(rate(segstream_worker_events_total[1m]))``). Namespace-wide numbers
(segment sizes, model quality, Redis counters) are the query API's ``/metrics``.
``/metrics`` needs no key: keep the port on a private network (it carries counts,
partition numbers and timings, no customer data).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from aiohttp import web

from stream.config import Settings
from stream.observability.exposition import PROMETHEUS_TEXT, Registry
from stream.observability.health import Check, add_health_routes, redis_check
from stream.observability.lag import consumer_offsets, partition_lag

if TYPE_CHECKING:  # the processor imports this module and stays free of faust
    import faust

log = logging.getLogger("stream.worker")


class WorkerMetrics:
    """What one worker process did: events, dead letters, latencies, and its consumer's offsets."""

    def __init__(self) -> None:
        self.registry = r = Registry()
        self.events = r.counter(
            "segstream_worker_events_total",
            "Records of the events topic this process consumed and processed (applied, skipped as duplicates, or dead-lettered).",
        )
        self.dead_letters = r.counter(
            "segstream_worker_dead_letters_total", "Records this process sent to the dead-letter topic, by reason.", ("reason",)
        )
        self.latency = r.histogram(
            "segstream_processing_latency_seconds",
            "From a record's Kafka timestamp (the collector's acceptance) to the end of its batch: state committed, changes published.",
        )
        self.timer_lateness = r.histogram(
            "segstream_timer_lateness_seconds",
            "From a customer's deadline (window exit, absence, date) to the re-evaluation deciding at it, for re-evaluations with no new event.",
        )
        self.partitions = r.gauge("segstream_worker_partitions", "Events-topic partitions this process owns.")
        self.lag = r.gauge(
            "segstream_consumer_lag",
            "Records this process fetched from the partition but has not processed and committed yet (position - committed).",
            ("partition",),
        )
        self.position = r.gauge(
            "segstream_consumer_position", "Next offset this process's consumer hands out (one past the last fetched).", ("partition",)
        )
        self.committed = r.gauge(
            "segstream_consumer_committed_offset", "Offset committed for the partition (one past the last processed).", ("partition",)
        )
        self.info = r.gauge("segstream_worker_info", "Always 1: the namespace this worker serves.", ("namespace",))

    def processed(self, records: Iterable[tuple[faust.EventT, int]]) -> None:
        """Count a processed batch's events, given per record, and observe each event's latency
        (its record's Kafka timestamp to now)."""
        now = time.time()
        events = 0
        for record, n in records:
            self.latency.observe(max(0.0, now - record.message.timestamp), n)
            events += n
        self.events.inc(events)

    def dead_lettered(self, counts: Mapping[str, int]) -> None:
        """Count dead letters given as ``{"dead_letter:<reason>": n}`` (the Redis counters' names)."""
        for name, n in counts.items():
            self.dead_letters.inc(n, name.partition(":")[2])

    def timer_decided(self, deadline_ms: int | None, now_ms: int) -> None:
        """Observe how late a re-evaluation with no new event decided, when the customer's deadline had passed."""
        if deadline_ms is not None and deadline_ms <= now_ms:
            self.timer_lateness.observe((now_ms - deadline_ms) / 1000)

    def consumer(self, owned: list[int], positions: Mapping[int, int | None], committed: Mapping[int, int | None]) -> None:
        """Set the partition, offset and lag gauges from the consumer's state now."""
        self.partitions.set(len(owned))
        self.lag.replace({(str(p),): n for p, n in partition_lag(positions, committed).items()})
        self.position.replace({(str(p),): v for p, v in positions.items() if v is not None})
        self.committed.replace({(str(p),): v for p, v in committed.items() if v is not None})


#: This process's worker metrics (hooks in ``stream.worker`` add to it).
WORKER = WorkerMetrics()


def serve_observability(app: faust.App, settings: Settings, client: aioredis.Redis, owned: Callable[[], list[int]]) -> None:
    """Add a faust task serving ``/metrics``, ``/healthz`` and ``/readyz`` on ``SEGSTREAM_WORKER_PORT`` (0: none).

    Ready: the process owns events-topic partitions and Redis answers. A standby
    worker (more workers than partitions) is alive but not ready.
    """
    if not settings.worker_port:
        return
    WORKER.info.set(1, settings.namespace)

    async def metrics(request: web.Request) -> web.Response:
        positions, committed = consumer_offsets(app.consumer, settings.events_topic)
        WORKER.consumer(owned(), positions, committed)
        return web.Response(text=WORKER.registry.render(), headers={"Content-Type": PROMETHEUS_TEXT})

    async def assigned() -> str | None:
        return None if owned() else "no events-topic partition assigned yet (joining the group, or a standby worker)"

    checks: dict[str, Check] = {"partitions": assigned, "redis": redis_check(client)}
    web_app = web.Application()
    web_app.router.add_get("/metrics", metrics)
    add_health_routes(web_app, checks)

    @app.task
    async def observability() -> None:
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.worker_host, settings.worker_port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning(
                "worker metrics: %s:%d is in use, so this worker serves no /metrics; give each worker on a host its own "
                "SEGSTREAM_WORKER_PORT (0: none)",
                settings.worker_host,
                settings.worker_port,
            )
            return
        log.info("worker metrics on http://%s:%d/metrics (/healthz, /readyz)", settings.worker_host, settings.worker_port)
        try:
            await asyncio.Event().wait()  # serve until faust cancels its tasks at shutdown
        finally:
            await runner.cleanup()

