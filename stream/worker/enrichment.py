"""Enrichment in the worker, off the hot path: results come back as ``identify`` events.

After a customer's step commits with an ``identify`` (from anyone but enrichment
itself), the worker runs the configured enrichers (``SEGSTREAM_ENRICHMENT``, see
:mod:`stream.enrich`) in a background task, at most :data:`MAX_RUNNING` at once — a
slow or failing enricher never delays a batch; when too many are running the
customer is skipped and counted. New or changed traits are produced to the events
topic as an ``identify`` keyed by the customer, with ``context.enrichment`` set and a
``messageId`` derived from its content, so they are applied in order and exactly
once like any event, and re-evaluate the segments.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import orjson
from redis.exceptions import RedisError

from stream.config import DEFAULT_ENRICHMENT, Settings
from stream.enrich import Enrichment, load_enrichment
from stream.kafka import AsyncProducer, KafkaUnavailable
from stream.state.profile import Profile, iso, now_ms
from stream.state.store import ProfileStore

log = logging.getLogger(__name__)

#: Enrichment runs one worker process keeps going at once.
MAX_RUNNING = 64
_NAMESPACE = uuid.UUID("3e9f5b1c-7a2d-4c8e-b6f0-d41a2c9e8b57")


def enrichment(settings: Settings) -> Enrichment | None:
    """The enrichers of ``SEGSTREAM_ENRICHMENT``; ``None`` when empty, or the default file and it is absent."""
    if not settings.enrichment:
        return None
    path = Path(settings.enrichment)
    if not path.is_file() and settings.enrichment == DEFAULT_ENRICHMENT:
        return None
    return load_enrichment(path)


def wants_enrichment(record: dict) -> bool:
    """Whether a record may bring traits enrichers key on: an identify not made by enrichment."""
    return record.get("type") == "identify" and not (record.get("context") or {}).get("enrichment")


def enriched_identify(customer_id: str, traits: dict, at: int) -> dict:
    """The events-topic record carrying enrichment results for ``customer_id``."""
    digest = uuid.uuid5(_NAMESPACE, customer_id + orjson.dumps(traits, option=orjson.OPT_SORT_KEYS).decode())
    return {
        "type": "identify",
        "userId": customer_id,
        "traits": traits,
        "context": {"enrichment": True},
        "ts": at,
        "timestamp": iso(at),
        "messageId": f"enrich:{digest}",
    }


class EnrichmentQueue:
    """Background enrichment runs of one worker process."""

    def __init__(self, settings: Settings, runner: Enrichment, producer: AsyncProducer, store: ProfileStore) -> None:
        self.topic = settings.events_topic
        self.runner = runner
        self.producer = producer
        self.store = store
        self.running: set[asyncio.Task[None]] = set()
        #: Offers skipped and not counted in Redis yet, and the one task counting them.
        self.skipped = 0
        self._counting: asyncio.Task[None] | None = None

    def offer(self, profile: Profile) -> None:
        """Enrich ``profile`` soon, unless :data:`MAX_RUNNING` runs are going (then it is counted and skipped)."""
        if len(self.running) >= MAX_RUNNING:
            self.skipped += 1
            if self._counting is None or self._counting.done():
                self._counting = asyncio.create_task(self._count_skipped())
            return
        task = asyncio.create_task(self._run(profile.customer_id, dict(profile.traits)))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _count_skipped(self) -> None:
        """Add the skipped offers to the ``enrichment_skipped`` counter: one Redis call at a time, however many skip."""
        while self.skipped:
            n, self.skipped = self.skipped, 0
            try:
                await self.store.count(enrichment_skipped=n)
            except (RedisError, OSError) as exc:
                self.skipped += n  # counted with the next skip
                log.warning("enrichment_skipped not counted yet: %s", exc)
                return

    async def _run(self, customer_id: str, traits: dict) -> None:
        try:
            found = await self.runner.enrich({"customer_id": customer_id, "traits": traits})
            new = {name: value for name, value in found.items() if traits.get(name) != value}
            if not new:
                return
            record = enriched_identify(customer_id, new, now_ms())
            await self.producer.send(self.topic, customer_id.encode(), orjson.dumps(record))
            await self.store.count(enrichments=1)
        except (KafkaUnavailable, OSError) as exc:  # best effort: the next identify tries again
            log.warning("enrichment of %s not delivered: %s", customer_id, exc)
