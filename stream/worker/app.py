"""The faust-streaming worker: an agent feeding event batches to the processor, and a timer task.

Faust provides consumer-group membership, partition assignment and at-least-once
offset commits (offsets are committed only after a batch was processed). State
lives in Redis, not in faust Tables: changelog recovery relies on high
watermarks, which some Kafka-protocol brokers (Tansu) report wrongly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import faust
import redis.asyncio as aioredis
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from redis.exceptions import RedisError

from stream.config import Settings, configure_logging
from stream.enrich import EnrichmentError
from stream.heap import tune_gc
from stream.kafka import AsyncProducer, KafkaUnavailable, ensure_topics, faust_credentials, topic_id
from stream.models.lifecycle import Modelling
from stream.models.snapshot import Snapshot
from stream.observability.worker import WORKER, serve_observability
from stream.rules import RuleError, RuleSet
from stream.state.modelstore import SnapshotFollower
from stream.state.profile import now_ms
from stream.state.connection import run_with_redis
from stream.state.rulestore import RuleWatcher, open_rules, policy_settings
from stream.state.store import ProfileStore
from stream.worker.backfill import backfill, pending_partitions
from stream.worker.enrichment import EnrichmentQueue, enrichment
from stream.worker.processor import Message, Processor, Rejected, expand
from stream.worker.watchdog import StallWatch, watch

log = logging.getLogger("stream.worker")
T = TypeVar("T")

#: Failures of Redis or Kafka: the batch is retried until they answer again.
TRANSIENT = (RedisError, KafkaUnavailable, ConnectionError, OSError)
RECOVERY_INTERVAL_S = 5.0
HEARTBEAT_INTERVAL_S = 1.0
#: Seconds after which a worker's start-up objects are frozen out of the cyclic GC (see stream.heap).
STARTUP_S = 10.0


def _limit_fetch_wait(max_wait_ms: int) -> None:
    """Cap the consumer's fetch long-poll, which faust hard-codes to 1500 ms.

    A broker that does not answer a pending fetch as soon as data arrives (Tansu
    holds it until the wait expires) would otherwise add up to that much latency
    to every event. The consumer is created before it starts, so setting the
    attribute its Fetcher is built from is enough.
    """
    create = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "segstream_patched", False):
        return

    def create_worker_consumer(self: AIOKafkaConsumerThread, transport: object) -> object:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    create_worker_consumer.segstream_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


def modelling(ruleset: RuleSet, snapshot: Snapshot | None) -> Modelling | None:
    """What a worker learns and scores with under ``ruleset`` (``None`` without a ``models:`` section)."""
    return Modelling(ruleset.models, snapshot, ruleset.points_at) if ruleset.models is not None else None


class _App(faust.App):
    """faust's App without its Monitor sensor, which costs ~15% of faust's work per event;
    segstream counts in Redis instead (``/stats``, ``/metrics``)."""

    def on_init_dependencies(self) -> Iterable[Any]:
        dependencies = super().on_init_dependencies()  # adds the Monitor to the sensors
        self.sensors.remove(self.monitor)
        return dependencies


def faust_app(settings: Settings) -> faust.App:
    """The faust App of the worker group (no tables, no web server, no Monitor)."""
    _limit_fetch_wait(settings.fetch_max_wait_ms)
    return _App(
        settings.consumer_group,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        store="memory://",
        web_enabled=False,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=1.0,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_credentials=faust_credentials(settings),
        datadir=str(settings.state_dir / "faust"),
    )


async def retry_transient(step: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``step`` until it succeeds, waiting out Redis/Kafka outages with capped backoff; returns its result."""
    delay = 0.2
    while True:
        try:
            return await step()
        except TRANSIENT as exc:
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def process_isolating(processor: Processor, messages: Sequence[Message]) -> list[int]:
    """Process a batch; if it hits a bug-level error, process record by record and dead-letter
    the culprits (every event of a failing envelope). Returns how many events each record held."""
    try:
        return await retry_transient(lambda: processor.handle_batch(messages), "batch")
    except Exception:  # noqa: BLE001 - isolated below, never swallowed
        log.exception("batch of %d records failed; isolating the failing records", len(messages))
    sizes: list[int] = []
    for message in messages:
        try:
            sizes += await retry_transient(lambda m=message: processor.handle_batch([m]), "record")
        except Exception as exc:  # noqa: BLE001 - dead-lettered with the reason
            dead = [(m, Rejected("processing_error", repr(exc))) for m in expand(message)]
            await retry_transient(lambda d=dead: processor.dead_letter(d), "dead letter")
            sizes.append(len(dead))
    return sizes


def build(settings: Settings) -> faust.App:
    """Prepare topics and rules, and wire the agent, the heartbeat and the timer task into a faust App.

    The timer task also follows rule deployments
    (swapping the rule set between batches) and starts backfills of owned
    partitions not yet evaluated under the current rule version.
    """
    ensure_topics(settings)
    epoch = topic_id(settings, settings.events_topic)
    initial = run_with_redis(settings, lambda client: open_rules(settings, client, now_ms()))
    client = aioredis.Redis.from_url(settings.redis_url)
    rules = RuleWatcher(
        client,
        settings.namespace,
        initial.ruleset,
        initial.cache_dir,
        settings.history_max_events,
        initial.version,
        policy_settings(settings),
    )
    # The batch pipelines bound each round trip themselves (see ProfileStore).
    store = ProfileStore(client, settings.namespace, aioredis.Redis.from_url(settings.redis_url, socket_timeout=None))
    producer = AsyncProducer(settings)
    runner = enrichment(settings)
    queue = EnrichmentQueue(settings, runner, producer, store) if runner is not None else None
    processor = Processor(
        settings,
        rules.ruleset,
        rules.policy,
        store,
        producer,
        epoch,
        models=modelling(rules.ruleset, None),
        enrich=queue.offer if queue is not None else None,
    )
    snapshots = SnapshotFollower(client, settings.namespace)

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust_app(settings)
    events = app.topic(
        settings.events_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    def owned() -> list[int]:
        try:
            assignment = app.consumer.assignment()
        except Exception:  # noqa: BLE001 - consumer not started yet
            return []
        return sorted(tp.partition for tp in assignment if tp.topic == settings.events_topic)

    stalls = StallWatch(settings.stall_after_s)

    @app.agent(events, name="segstream-events")
    async def consume(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            messages = [
                Message(e.message.partition, e.message.offset, e.message.key, e.message.value) for e in batch
            ]
            stalls.working(messages, time.monotonic())
            try:
                sizes = await process_isolating(processor, messages)
            finally:
                stalls.waiting(time.monotonic())
            WORKER.processed(zip(batch, sizes))

    serve_observability(app, settings, client, owned)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"

    backfills: set[asyncio.Task[int]] = set()

    async def follow_rules(partitions: list[int]) -> None:
        if await rules.refresh():
            async with processor.turn():
                processor.use_rules(rules.ruleset, rules.policy, modelling(rules.ruleset, snapshots.current))
        if await snapshots.refresh() and processor.models is not None:
            processor.models.snapshot = snapshots.current
        if backfills or not partitions:
            return
        todo = await pending_partitions(processor, rules.version, partitions)
        if todo:
            task = asyncio.create_task(backfill(processor, rules.version, todo))
            backfills.add(task)
            task.add_done_callback(backfills.discard)

    @app.task
    async def heartbeat() -> None:
        # A task of its own: the timer task waits on Kafka while Kafka is unreachable.
        while True:
            await retry_transient(lambda: store.heartbeat(worker_id, owned(), now_ms()), "heartbeat")
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    @app.task
    async def settle_heap() -> None:
        await asyncio.sleep(STARTUP_S)  # the consumer, its fetcher and the web server exist by then
        tune_gc()

    @app.task
    async def stall_watchdog() -> None:
        await watch(app, settings.events_topic, stalls, owned)

    @app.task
    async def timers() -> None:
        last_recovery = last_rules = 0.0
        while True:
            partitions = owned()
            if time.monotonic() - last_rules > HEARTBEAT_INTERVAL_S:
                last_rules = time.monotonic()
                await retry_transient(lambda: follow_rules(partitions), "rules")
            if partitions:
                await retry_transient(lambda: processor.fire_timers(partitions), "timers")
                if time.monotonic() - last_recovery > RECOVERY_INTERVAL_S:
                    last_recovery = time.monotonic()
                    await retry_transient(lambda: processor.recover(partitions), "outbox recovery")
            await asyncio.sleep(settings.timer_tick_s)

    log.info(
        "worker: rules version %s (%d segments), events %s, changes %s, redis %s",
        rules.version,
        len(rules.ruleset.segments),
        settings.events_topic,
        settings.changes_topic,
        settings.redis_url,
    )
    return app


def run(settings: Settings) -> int:
    """``segstream worker``: run until SIGTERM/SIGINT; refuses to start on bad rules."""
    configure_logging(settings)
    try:
        app = build(settings)
    except RuleError as exc:
        print(f"segstream worker: refusing to start, the rules are invalid:\n{exc}", file=sys.stderr)
        return 2
    except EnrichmentError as exc:
        print(f"segstream worker: refusing to start, the enrichment file is invalid:\n{exc}", file=sys.stderr)
        return 2
    except KafkaUnavailable as exc:
        print(f"segstream worker: {exc}", file=sys.stderr)
        return 3
    tune_gc()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True, override_logging=settings.log_format == "text")
    if settings.log_format == "json":
        worker.spinner = None  # its terminal escapes on stdout would break JSON lines
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
