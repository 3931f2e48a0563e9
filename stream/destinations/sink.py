"""One destination's consumer loop on the segment-changes topic: at-least-once delivery through a handler.

Each destination has its own consumer group (``<ns>-destination-<name>``), so a slow
or failing one never holds back another. The loop polls without blocking the event
loop, hands the changes of its segments to the destination's :class:`Handler`
(webhook or audience) once it is ``ready``, dead-letters what the handler could not
deliver to ``<ns>.destinations.<name>.dead-letter``, and only then stores the batch's
offsets for commit. A crash before that re-delivers the batch: duplicates, with the
same ``Idempotency-Key``, never a loss.

Counters in the ``<ns>:stats`` hash: ``destination:<name>:delivered`` (changes),
``destination:<name>:retries`` (attempts after a first one),
``destination:<name>:dead_letter`` (changes), ``destination:<name>:reconcile_failed``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from stream.config import Settings
from stream.destinations.config import DestinationSpec
from stream.destinations.delivery import Delivery
from stream.destinations.records import consumer_group, dead_letter_record, dead_letter_topic, parse_change
from stream.kafka import AsyncProducer, client_config
from stream.state import keys
from stream.state.profile import now_ms

log = logging.getLogger("stream.destinations")
#: Records taken from the consumer's queue at once; seconds to sleep when it is empty.
POLL_MAX = 500
IDLE_S = 0.05


@dataclass(frozen=True)
class Received:
    """A change record of the destination's segments and the Kafka message that carried it."""

    message: Message
    change: dict[str, Any]


@dataclass(frozen=True)
class Sent:
    """The changes one request (with its retries) carried, and how it ended."""

    records: Sequence[Received]
    delivery: Delivery


class Handler(Protocol):
    """How a kind of destination delivers: ``ready`` to flush, ``handle`` a batch, ``maintain`` between polls."""

    spec: DestinationSpec

    def ready(self, pending: int, age_s: float) -> bool:
        """Whether ``pending`` changes, the oldest ``age_s`` seconds old, should be handled now."""

    async def handle(self, records: list[Received]) -> list[Sent]:
        """Deliver ``records`` (in per-customer order); every record ends in exactly one returned :class:`Sent`."""

    async def maintain(self) -> list[Delivery]:
        """Periodic work between polls (an audience's reconcile); the requests it made."""


class Sink:
    """The consumer loop of one destination (see the module docstring)."""

    def __init__(self, settings: Settings, handler: Handler, producer: AsyncProducer, redis: aioredis.Redis) -> None:
        self.settings, self.handler, self.producer, self.redis = settings, handler, producer, redis
        self.spec = handler.spec
        self.dead_letters = dead_letter_topic(settings.namespace, self.spec.name)

    def consumer(self) -> Consumer:
        """The destination's consumer: its own group, offsets stored by hand once delivered, committed every second."""
        return Consumer(
            client_config(
                self.settings,
                **{
                    "group.id": consumer_group(self.settings.namespace, self.spec.name),
                    "enable.auto.commit": True,
                    "auto.commit.interval.ms": 1000,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": self.spec.start_from,
                    "session.timeout.ms": int(self.settings.session_timeout_s * 1000),
                    "heartbeat.interval.ms": max(100, int(self.settings.session_timeout_s * 1000 / 4)),
                },
            )
        )

    async def run(self) -> None:
        """Deliver changes until cancelled; the consumer commits what was delivered when it closes."""
        consumer = self.consumer()
        consumer.subscribe([self.settings.changes_topic])
        batch: list[Message] = []
        first_at = 0.0
        try:
            while True:
                await self.count(reconcile_failed=sum(not d.delivered for d in await self.handler.maintain()))
                messages = consumer.consume(POLL_MAX, 0)
                for message in messages:
                    error = message.error()
                    if error is None:
                        first_at = first_at if batch else time.monotonic()
                        batch.append(message)
                    elif not error.retriable():
                        log.warning("destination %s: reading %s: %s", self.spec.name, self.settings.changes_topic, error.str())
                if batch and self.handler.ready(len(batch), time.monotonic() - first_at):
                    await self.flush(batch)
                    store(consumer, batch)
                    batch = []
                elif not messages:
                    await asyncio.sleep(IDLE_S)
        finally:
            consumer.close()

    async def flush(self, batch: list[Message]) -> None:
        """Hand the batch's changes of this destination to the handler; dead-letter what it could not deliver and what is unreadable."""
        records, dead = [], []
        for message in batch:
            try:
                change = parse_change(message.value())
            except ValueError as exc:
                dead.append(self._dead_letter("invalid_change", message, None, None, str(exc)))
                continue
            if self.spec.wants(change["segment"]):
                records.append(Received(message, change))
        delivered = retries = 0
        for sent in await self.handler.handle(records) if records else []:
            retries += sent.delivery.attempts - 1
            if sent.delivery.delivered:
                delivered += len(sent.records)
                continue
            log.warning(
                "destination %s: dead-lettering %d change(s) after %d attempt(s) (%s): %s",
                self.spec.name, len(sent.records), sent.delivery.attempts, sent.delivery.reason, sent.delivery.last.error,
            )
            dead += [self._dead_letter(sent.delivery.reason, r.message, r.change, sent.delivery) for r in sent.records]
        await self.producer.send_many(dead)
        await self.count(delivered=delivered, retries=retries, dead_letter=len(dead))

    def _dead_letter(
        self, reason: str, message: Message, change: dict[str, Any] | None, delivery: Delivery | None, error: str = ""
    ) -> tuple[str, bytes | None, bytes]:
        where = (message.topic() or "", message.partition() or 0, message.offset() or 0)
        value = dead_letter_record(
            self.spec.name, reason, change=change, value=message.value(), where=where, delivery=delivery, error=error, at_ms=now_ms()
        )
        return self.dead_letters, message.key(), value

    async def count(self, **counters: int) -> None:
        """Add to ``destination:<name>:<counter>`` in the namespace's stats hash."""
        if any(counters.values()):
            pipe = self.redis.pipeline(transaction=False)
            for name, n in counters.items():
                if n:
                    pipe.hincrby(keys.stats(self.settings.namespace), f"destination:{self.spec.name}:{name}", n)
            await pipe.execute()


def store(consumer: Consumer, batch: list[Message]) -> None:
    """Mark the batch delivered: the offset after its last record of each partition, committed by the consumer."""
    last: dict[tuple[str, int], int] = defaultdict(int)
    for message in batch:
        key = (message.topic(), message.partition())
        last[key] = max(last[key], message.offset() + 1)
    try:
        consumer.store_offsets(offsets=[TopicPartition(topic, partition, offset) for (topic, partition), offset in last.items()])
    except KafkaException as exc:  # a partition revoked meanwhile: its new owner delivers the batch again
        log.info("offsets not stored (%s); those changes will be delivered again", exc)
