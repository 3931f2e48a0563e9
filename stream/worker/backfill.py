"""Backfill: re-evaluate every existing customer of this worker's partitions under a new rule set.

Evaluation is level-triggered, so re-evaluating a customer decides exactly the
changes the new rules imply — ``entered`` for a new or changed segment's
qualifiers, ``exited`` for the members of a removed one — as ordinary changes
(same ids, seq, exactly once). Customers are found by scanning profile keys and
mapping each id to its partition with Kafka's default (murmur2) partitioner, so
the hot path writes no extra index. Work goes in small chunks, each holding the
processor's lock only briefly, so live events keep flowing. Progress is kept per
partition in ``ns:backfill:{version}``: a partition that moves to another worker
mid-way is backfilled by its new owner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from aiokafka.partitioner import murmur2

from stream.state import keys
from stream.state.backfills import BackfillProgress, done_field, running_field, running_value
from stream.worker.processor import Processor

log = logging.getLogger(__name__)

CHUNK = 200


def partition_of(customer_id: str, partitions: int) -> int:
    """The events-topic partition of a customer keyed by its id (Kafka's default partitioner)."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


async def pending_partitions(processor: Processor, version: str, owned: Iterable[int]) -> list[int]:
    """The owned partitions not yet backfilled for ``version``."""
    progress = BackfillProgress.from_fields(await processor.store.redis.hgetall(keys.backfill(processor.store.ns, version)))
    return [p for p in owned if p not in progress.done]


async def backfill(processor: Processor, version: str, partitions: list[int]) -> int:
    """Re-evaluate every customer of ``partitions``; returns how many were evaluated."""
    store, total = processor.store, processor.settings.partitions
    wanted = set(partitions)
    evaluated = scanned = 0
    counts = {p: 0 for p in partitions}
    started = last_report = time.monotonic()
    progress_key, running = keys.backfill(store.ns, version), running_field(partitions)
    await store.redis.hset(progress_key, running, running_value(0, 0))
    cursor = 0
    while True:
        cursor, found = await store.redis.scan(cursor, match=keys.profile_pattern(store.ns), count=1000)
        scanned += len(found)
        chunk: dict[str, int] = {}
        for key in found:
            cid = keys.customer_of(key)
            partition = partition_of(cid, total)
            if partition in wanted:
                chunk[cid] = partition
                counts[partition] += 1
            if len(chunk) >= CHUNK:
                evaluated += await processor.reevaluate(chunk)
                chunk = {}
        if chunk:
            evaluated += await processor.reevaluate(chunk)
        if time.monotonic() - last_report > 1:
            last_report = time.monotonic()
            await store.redis.hset(progress_key, running, running_value(scanned, evaluated))
            log.info("backfill %s: %d customers evaluated, %d profiles scanned", version, evaluated, scanned)
        if cursor == 0:
            break
    pipe = store.redis.pipeline(transaction=True)
    pipe.hset(progress_key, mapping={done_field(p): n for p, n in counts.items()})
    pipe.hdel(progress_key, running)
    await pipe.execute()
    log.info(
        "backfill %s of partitions %s done: %d customers in %.1fs",
        version,
        partitions,
        evaluated,
        time.monotonic() - started,
    )
    return evaluated
