"""``kind: audience``: an external list per segment kept equal to the segment's members.

The protocol a receiver implements (all requests signed like webhooks):

* ``POST <url>`` with ``{"segment": "vip", "add": [ids], "remove": [ids]}`` — at most
  ``batch_size`` ids per call; ``Idempotency-Key`` is derived from the change ids the call
  carries (a re-delivered batch has the same key). Adding a present id or removing an
  absent one must be harmless.
* ``GET <url>?segment=vip`` answering ``{"members": [ids]}``: the list as the receiver holds it.

Changes are buffered until ``batch_size`` of them or ``linger_s`` seconds, then coalesced
(a customer who entered and exited within the batch is sent once, as their last change
says). On start and every ``reconcile_every_s`` seconds (``0``: only on start) each
segment's list is **reconciled**: its members are read from Redis (``<ns>:seg:{segment}``,
what the query API answers), compared with the receiver's ``GET``, and the difference is
sent as add/remove calls. The reconcile also repairs what a change delivered late
(a republished, older change) or dead-lettered left wrong.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict

import aiohttp
import orjson
import redis.asyncio as aioredis
from yarl import URL

from stream.destinations.audience import Update, coalesce, diff
from stream.destinations.config import AudienceSpec
from stream.destinations.delivery import Delivery, with_retries
from stream.destinations.http import call, json_body
from stream.destinations.sink import Received, Sent
from stream.state import keys

log = logging.getLogger("stream.destinations")
_KEYS = uuid.UUID("8d2b4c61-0f7e-4a55-9a3c-2f1e6b7d9c40")


class AudienceHandler:
    """Batched add/remove calls and periodic reconciles (see the module docstring)."""

    def __init__(self, spec: AudienceSpec, session: aiohttp.ClientSession, redis: aioredis.Redis, namespace: str) -> None:
        self.spec, self.session, self.redis, self.namespace = spec, session, redis, namespace
        self.next_reconcile = 0.0

    def ready(self, pending: int, age_s: float) -> bool:
        """When ``batch_size`` changes wait, or the oldest waited ``linger_s``."""
        return pending >= self.spec.batch_size or age_s >= self.spec.linger_s

    async def handle(self, records: list[Received]) -> list[Sent]:
        """One coalesced update per segment, in calls of at most ``batch_size`` ids; a failed call fails its segment's changes."""
        by_segment: dict[str, list[Received]] = defaultdict(list)
        for record in records:
            by_segment[record.change["segment"]].append(record)
        sent = []
        for segment, update in coalesce(r.change for r in records).items():
            ids = sorted(r.change["id"] for r in by_segment[segment])
            key = uuid.uuid5(_KEYS, "\n".join([segment, *ids]))
            sent.append(Sent(by_segment[segment], await self.send(segment, update, str(key))))
        return sent

    async def send(self, segment: str, update: Update, key: str) -> Delivery:
        """A non-empty ``update`` in calls of ``batch_size`` ids (keys ``<key>-<n>``); the first call that fails ends it."""
        for n, part in enumerate(update.chunks(self.spec.batch_size)):
            body = orjson.dumps({"segment": segment, "add": part.add, "remove": part.remove})
            delivery = await self._retried("POST", self.spec.url, body, f"{key}-{n}")
            if not delivery.delivered:
                break
        return delivery

    async def maintain(self) -> list[Delivery]:
        """Reconcile every segment when due; the failed requests (a failure retries the reconcile after ``backoff.max_s``)."""
        if time.monotonic() < self.next_reconcile:
            return []
        failed = []
        for segment in self.spec.segments:
            delivery = await self.reconcile(segment)
            if not delivery.delivered:
                failed.append(delivery)
        every = self.spec.backoff.max_s if failed else self.spec.reconcile_every_s or float("inf")
        self.next_reconcile = time.monotonic() + every
        return failed

    async def reconcile(self, segment: str) -> Delivery:
        """Make the receiver's list of ``segment`` equal to its members in Redis."""
        members = {m.decode() async for m, _score in self.redis.zscan_iter(keys.segment(self.namespace, segment), count=1000)}
        url = str(URL(self.spec.url).update_query(segment=segment))
        listed = await self._retried("GET", url, b"", f"reconcile-{uuid.uuid4()}")
        if not listed.delivered:
            log.warning("destination %s: cannot read the list of %s to reconcile it: %s", self.spec.name, segment, listed.last.error)
            return listed
        try:
            reported = {str(m) for m in json_body(listed.last)["members"]}
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("destination %s: GET %s must answer {\"members\": [ids]}: %s", self.spec.name, url, exc)
            return Delivery(False, listed.attempts, listed.last)
        update = diff(members, reported)
        log.info("destination %s: reconciling %s: %d members, %d to add, %d to remove", self.spec.name, segment, len(members), len(update.add), len(update.remove))
        return await self.send(segment, update, f"reconcile-{uuid.uuid4()}") if update else listed

    async def _retried(self, method: str, url: str, body: bytes, key: str) -> Delivery:
        return await with_retries(
            lambda: call(self.session, self.spec, method, url, body, {"Idempotency-Key": key}), self.spec.max_attempts, self.spec.backoff
        )
