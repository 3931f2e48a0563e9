"""``kind: webhook``: each change POSTed on its own — the record's bytes as the body, its ``id`` as ``Idempotency-Key``.

Partitions are delivered concurrently, each partition's changes one after another,
so a customer's changes (one partition: the topic is keyed by customer) arrive in
``seq`` order; a change being retried holds back the later ones of its partition.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp

from stream.destinations.config import WebhookSpec
from stream.destinations.delivery import Delivery, with_retries
from stream.destinations.http import call
from stream.destinations.sink import Received, Sent


class WebhookHandler:
    """Delivers changes one request each (see the module docstring)."""

    def __init__(self, spec: WebhookSpec, session: aiohttp.ClientSession) -> None:
        self.spec, self.session = spec, session

    def ready(self, pending: int, age_s: float) -> bool:
        """Always: a webhook gets each change as soon as it is read."""
        return True

    async def maintain(self) -> list[Delivery]:
        """Nothing to do between polls."""
        return []

    async def handle(self, records: list[Received]) -> list[Sent]:
        """POST every change, partitions concurrently, in order within each."""
        by_partition: dict[int, list[Received]] = defaultdict(list)
        for record in records:
            by_partition[record.message.partition()].append(record)
        done = await asyncio.gather(*(self._in_order(part) for part in by_partition.values()))
        return [sent for part in done for sent in part]

    async def _in_order(self, records: list[Received]) -> list[Sent]:
        return [Sent([record], await self.post(record)) for record in records]

    async def post(self, record: Received) -> Delivery:
        """One change, retried as the destination's policy says."""
        body, headers = record.message.value() or b"", {"Idempotency-Key": record.change["id"]}
        return await with_retries(
            lambda: call(self.session, self.spec, "POST", self.spec.url, body, headers), self.spec.max_attempts, self.spec.backoff
        )
