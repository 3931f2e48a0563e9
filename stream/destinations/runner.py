"""``segstream destinations``: every destination of the file, each in its own task with its own consumer group."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from confluent_kafka import KafkaException

from stream.auth.redact import mask_secrets_in_logs
from stream.config import Settings, configure_logging
from stream.destinations.config import AudienceSpec, WebhookSpec, load_destinations
from stream.destinations.errors import DestinationsError
from stream.destinations.records import dead_letter_topic
from stream.destinations.sink import Handler, Sink
from stream.destinations.sync import AudienceHandler
from stream.destinations.webhook import WebhookHandler
from stream.kafka import AsyncProducer, KafkaUnavailable, create_topics, ensure_topics

log = logging.getLogger("stream.destinations")


def ensure_dead_letter_topics(settings: Settings, specs: list[WebhookSpec | AudienceSpec], timeout: float = 15.0) -> None:
    """Create each destination's dead-letter topic when missing (``SEGSTREAM_PARTITIONS``, ``SEGSTREAM_REPLICATION``)."""
    create_topics(settings, {dead_letter_topic(settings.namespace, spec.name): settings.partitions for spec in specs}, timeout)


async def serve(settings: Settings, specs: list[WebhookSpec | AudienceSpec], stop: asyncio.Event) -> int:
    """Run a :class:`Sink` per destination until ``stop`` is set or one of them fails (exit code 1)."""
    redis = aioredis.Redis.from_url(settings.redis_url)
    producer = AsyncProducer(settings)
    async with aiohttp.ClientSession() as session:
        handlers: list[Handler] = [
            AudienceHandler(spec, session, redis, settings.namespace) if isinstance(spec, AudienceSpec) else WebhookHandler(spec, session)
            for spec in specs
        ]
        tasks = [asyncio.create_task(Sink(settings, h, producer, redis).run(), name=h.spec.name) for h in handlers]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        for task in done - {stopped}:
            log.error("destination %s stopped: %r; exiting so it restarts", task.get_name(), task.exception())
            code = 1
        for task in [*tasks, stopped]:
            task.cancel()
        await asyncio.gather(*tasks, stopped, return_exceptions=True)
    producer.close()
    await redis.aclose()
    return code


def run(settings: Settings, path: Path | str | None = None) -> int:
    """``segstream destinations``: deliver until SIGTERM/SIGINT (2: invalid file, 3: Kafka unavailable)."""
    configure_logging(settings)
    file = path or settings.destinations
    try:
        specs = load_destinations(file)
    except DestinationsError as exc:
        print(f"segstream destinations: {exc}", file=sys.stderr)
        return 2
    if not specs:
        print(f"segstream destinations: {file} lists no destinations; add some (see destinations.example.yaml)", file=sys.stderr)
        return 2
    mask_secrets_in_logs(spec.key() for spec in specs)
    try:
        ensure_topics(settings)
        ensure_dead_letter_topics(settings, specs)
    except (KafkaUnavailable, KafkaException) as exc:
        print(f"segstream destinations: {exc}", file=sys.stderr)
        return 3
    log.info("delivering segment changes to %s", ", ".join(f"{s.name} ({s.kind})" for s in specs))

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(settings, specs, stop)

    return asyncio.run(main())
