"""Redis memory per customer profile, at ``customers`` customers with a typical profile.

Profiles are built in-process by the worker's own step
(:mod:`stream.bench.profiles`, the ten bench rules, ``per_customer`` events each
over 40 days) and written by the worker's own Redis code
(:class:`stream.state.store.ProfileStore`: the Lua commit with the applied
offsets, timers, then the member sets as after Kafka acknowledged the changes).
Building them through Kafka and a worker would take far longer and write the
same keys. Reported: the server's ``used_memory`` growth per customer (profile,
member-set entries, timers: everything segstream keeps for one customer) and
``MEMORY USAGE`` of sampled profile keys.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import zlib
from typing import Any

import redis.asyncio as aioredis

from stream.bench import profiles, workload
from stream.bench.engine import Env
from stream.bench.progress import Progress
from stream.config import Settings
from stream.kafka import topic_id
from stream.state import keys
from stream.state.profile import now_ms
from stream.state.rulestore import policy_settings
from stream.state.store import Commit, Loaded, ProfileStore, split_stored

CHUNK = 5_000
SAMPLE = 1_000


def measure(env: Env, customers: int, per_customer: int, progress: Progress, seed: int = 5) -> dict[str, Any]:
    """Write ``customers`` profiles of ``per_customer`` events; memory per customer and per profile key."""
    settings = env.fresh("memory")
    client = env.redis()
    try:
        client.execute_command("MEMORY", "PURGE")
        before = int(client.info("memory")["used_memory"])
        progress.say(f"memory: building {customers:,} profiles of {per_customer} events with the worker's step")
        events = asyncio.run(_fill(settings, customers, per_customer, seed, progress))
        client.execute_command("MEMORY", "PURGE")
        after = int(client.info("memory")["used_memory"])
        sample = random.Random(seed).sample(range(customers), min(SAMPLE, customers))
        pipe = client.pipeline(transaction=False)
        for i in sample:
            key = keys.profile(settings.namespace, f"c{i}")
            pipe.memory_usage(key, samples=0)
            pipe.get(key)
        rows = pipe.execute()
    finally:
        env.cleanup(settings.namespace)
    usage = [int(n) for n in rows[0::2]]
    json_bytes = [len(split_stored(raw)[1] or b"") for raw in rows[1::2]]
    return {
        "customers": customers,
        "events": events,
        "events_per_customer": per_customer,
        "used_memory_bytes": after - before,
        "bytes_per_customer": (after - before) / customers,
        "profile_key_bytes": {"median": statistics.median(usage), "mean": statistics.fmean(usage), "max": max(usage)},
        "profile_json_bytes_mean": statistics.fmean(json_bytes),
    }


async def _fill(settings: Settings, customers: int, per_customer: int, seed: int, progress: Progress) -> int:
    rules = workload.ruleset(settings.rules_dir)
    policy = profiles.policy(rules, policy_settings(settings))
    epoch = topic_id(settings, settings.events_topic)
    client = aioredis.Redis.from_url(settings.redis_url)
    store = ProfileStore(client, settings.namespace)
    offsets = [0] * settings.partitions
    events = 0
    now = now_ms()
    try:
        for first in range(0, customers, CHUNK):
            n = min(CHUNK, customers - first)
            records = workload.generate(events=n * per_customer, customers=n, now=now, seed=seed + first, first=first)
            commits = []
            for profile, step in profiles.build(records, rules, policy, now):
                # What the worker's offset dedup leaves in a profile: the partition and its last applied offset.
                partition = zlib.crc32(profile.customer_id.encode()) % settings.partitions
                offsets[partition] += per_customer
                profile.partition = partition
                profile.applied = {f"{epoch}:{partition}": offsets[partition]}
                commits.append(Commit(Loaded(0, profile), step.changes, step.training, step.deletions, step.routed))
            await store.commit(commits, now, [c.loaded.profile for c in commits], {"events": len(records)})
            await store.confirm_published(
                [e for c in commits for e in c.outbound], {c.customer_id: c.loaded.profile.partition or 0 for c in commits}
            )
            events += len(records)
            progress.update(f"{first + n:,}/{customers:,} profiles written")
    finally:
        await client.aclose()
    return events
