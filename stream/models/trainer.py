"""The trainer: one process that learns every model from the training topic and publishes snapshots.

Workers publish observations and labelled examples (``stream.models.records``)
through their outbox to the one-partition training topic. The trainer reads it
in order, lets the :class:`~stream.models.learner.Learner` predict-then-learn each
record, and every ``SEGSTREAM_SNAPSHOT_EVERY`` seconds (when it learned something)
stores, in one Redis transaction, its state with the offset it learned up to, a
new scoring snapshot and the quality report (``stream.state.modelstore``).

Exactly once: after a crash the trainer resumes from the offset saved with the
state it resumes, so no record is learned twice or skipped; records a worker
republished after its own crash carry the same id and the learner ignores them.
One trainer runs at a time (a Redis lease); a second one stands by.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time

import orjson
import redis.asyncio as aioredis
from confluent_kafka import Consumer, KafkaException, TopicPartition

from stream.config import Settings, configure_logging
from stream.kafka import KafkaUnavailable, client_config, ensure_topics, topic_id
from stream.models.learner import Learner
from stream.models.records import TrainingRecord
from stream.rules import RuleError, RuleSet
from stream.state import modelstore
from stream.state.modelstore import TrainerState
from stream.state.profile import now_ms
from stream.state.rulestore import RuleWatcher, open_rules

log = logging.getLogger("stream.trainer")

LEASE_TTL_MS = 15_000
BATCH = 1000


def new_learner(ruleset: RuleSet) -> Learner:
    """A learner for the models and thresholds of ``ruleset`` (which must have a ``models:`` section)."""
    assert ruleset.models is not None
    return Learner(ruleset.models, ruleset.score_thresholds(), ruleset.score_segments())


class Trainer:
    """The trainer's loop over the training topic; :meth:`run_until` drives it."""

    def __init__(self, settings: Settings, client: aioredis.Redis, rules: RuleWatcher, owner: str) -> None:
        self.settings = settings
        self.redis = client
        self.rules = rules
        self.owner = owner
        self.state: TrainerState | None = None
        self.malformed = 0

    async def resume(self) -> None:
        """Load the saved state (or start afresh when there is none, or the topic was re-created)."""
        ns = self.settings.namespace
        epoch = topic_id(self.settings, self.settings.training_topic)
        state = await modelstore.load_state(self.redis, ns)
        if state is not None and state.topic_id == epoch and self._same_config(state.learner):
            log.info("trainer resumes at offset %d (snapshot version %d)", state.offset, state.version)
            self.state = state
            return
        version = state.version if state is not None else 0
        if state is not None:
            log.warning("training topic re-created or models: changed; learning afresh")
        self.state = TrainerState(new_learner(self.rules.ruleset), 0, epoch, version)

    def _same_config(self, learner: Learner) -> bool:
        return learner.config == self.rules.ruleset.models

    async def run_until(self, stop: asyncio.Event) -> None:
        """Learn and snapshot until ``stop`` is set."""
        assert self.state is not None
        consumer = Consumer(
            client_config(self.settings, **{"group.id": f"{self.settings.namespace}-trainer", "enable.auto.commit": False})
        )
        consumer.assign([TopicPartition(self.settings.training_topic, 0, self.state.offset)])
        learned, last_save = 0, time.monotonic()
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(consumer.consume, BATCH, 0.5)
                learned += self.learn(messages)
                await self.follow_rules()
                if learned and time.monotonic() - last_save >= self.settings.snapshot_every_s:
                    await self.save()
                    learned, last_save = 0, time.monotonic()
                if not await modelstore.acquire_lease(self.redis, self.settings.namespace, self.owner, LEASE_TTL_MS):
                    raise RuntimeError("the trainer lease was lost (Redis unreachable too long?); restart this trainer")
            if learned:
                await self.save()
        finally:
            consumer.close()

    def learn(self, messages: list) -> int:
        """Learn each record of ``messages`` in order; returns how many were read."""
        assert self.state is not None
        read = 0
        for message in messages:
            if message.error() is not None:
                if message.error().retriable():
                    continue
                raise KafkaUnavailable(f"reading {self.settings.training_topic} failed: {message.error().str()}")
            try:
                record = TrainingRecord.from_bytes(message.value())
            except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
                self.malformed += 1
                log.error("skipped malformed training record at offset %d: %r", message.offset(), exc)
            else:
                self.state.learner.learn(record)
            self.state.offset = message.offset() + 1
            read += 1
        return read

    async def follow_rules(self) -> None:
        """Take new thresholds and segments from a new rule deployment; relearn when ``models:`` changed."""
        assert self.state is not None
        if not await self.rules.refresh():
            return
        ruleset = self.rules.ruleset
        if ruleset.models is None:
            log.warning("the deployed rules have no models: section; the trainer keeps its models but workers stop scoring")
            return
        if not self._same_config(self.state.learner):
            log.warning("models: changed in the rules; learning afresh from the next training record")
            self.state.learner = new_learner(ruleset)
        else:
            self.state.learner.use_rules(ruleset.score_thresholds(), ruleset.score_segments())

    async def save(self) -> None:
        """Publish a new snapshot with the state and report (one transaction)."""
        assert self.state is not None
        self.state.version += 1
        learner = self.state.learner
        info = {
            "version": self.state.version,
            "at": now_ms(),
            "offset": self.state.offset,
            "trainer": self.owner,
            "rules_version": self.rules.version,
            "malformed": self.malformed,
            "report": learner.report(),
        }
        await modelstore.save(self.redis, self.settings.namespace, self.state, learner.snapshot(self.state.version), info)
        log.info("published model snapshot %d (offset %d)", self.state.version, self.state.offset)


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    """Take the lease (standing by while another trainer has it), resume, learn until ``stop``."""
    client = aioredis.Redis.from_url(settings.redis_url)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    try:
        rules = await open_rules(settings, client, now_ms())
        if rules.ruleset.models is None:
            log.warning("the rules have no models: section; the trainer idles until one is deployed")
        while not stop.is_set():
            if rules.ruleset.models is not None and await modelstore.acquire_lease(client, settings.namespace, owner, LEASE_TTL_MS):
                break
            await rules.refresh()
            try:
                await asyncio.wait_for(stop.wait(), LEASE_TTL_MS / 3000)
            except asyncio.TimeoutError:
                pass
        if stop.is_set():
            return 0
        trainer = Trainer(settings, client, rules, owner)
        await trainer.resume()
        await trainer.run_until(stop)
        return 0
    finally:
        await modelstore.release_lease(client, settings.namespace, owner)
        await client.aclose()


def run(settings: Settings) -> int:
    """``segstream trainer``: run until SIGTERM/SIGINT."""
    configure_logging(settings)
    try:
        ensure_topics(settings)
    except (KafkaUnavailable, KafkaException) as exc:
        print(f"segstream trainer: {exc}", file=sys.stderr)
        return 3

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(settings, stop)

    try:
        return asyncio.run(main())
    except RuleError as exc:
        print(f"segstream trainer: refusing to start, the rules are invalid:\n{exc}", file=sys.stderr)
        return 2
