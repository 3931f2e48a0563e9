"""Model snapshots and the trainer's state in Redis (keys under one hash tag, see ``stream.state.keys``).

The trainer saves, in one transaction, its whole state (the learner and the
training-topic offset it has learned up to: it resumes from there, so every
record is learned once across restarts), the snapshot workers score with, its
version and the quality report. Workers poll the version (one GET a second) and
load the snapshot when it changes. Snapshots and state are pickles of river
models: Redis holds trusted state only, never anything a client can write.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from stream.models.learner import Learner
from stream.models.snapshot import Snapshot
from stream.state import keys

log = logging.getLogger(__name__)


@dataclass
class TrainerState:
    """What a trainer resumes from: the learner, the next training-topic offset and the topic's id."""

    learner: Learner
    offset: int
    topic_id: str
    version: int


async def save(client: aioredis.Redis, ns: str, state: TrainerState, snapshot: Snapshot, info: dict[str, Any]) -> None:
    """Store state, snapshot, version and report together (MULTI/EXEC: all or nothing)."""
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.models(ns, "state"), pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    pipe.set(keys.models(ns, "snapshot"), pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))
    pipe.set(keys.models(ns, "info"), orjson.dumps(info, option=orjson.OPT_SERIALIZE_NUMPY))
    pipe.set(keys.models(ns, "version"), state.version)
    await pipe.execute()


async def load_state(client: aioredis.Redis, ns: str) -> TrainerState | None:
    """The trainer state saved last, or ``None`` before the first save."""
    raw = await client.get(keys.models(ns, "state"))
    return pickle.loads(raw) if raw else None  # noqa: S301 - trusted state written by the trainer


_ACQUIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def acquire_lease(client: aioredis.Redis, ns: str, owner: str, ttl_ms: int) -> bool:
    """Take or renew the single-trainer lease (atomically); ``False`` while another trainer holds it."""
    return bool(await client.eval(_ACQUIRE, 1, keys.models(ns, "lease"), owner, ttl_ms))


async def release_lease(client: aioredis.Redis, ns: str, owner: str) -> None:
    """Give the lease up if this trainer holds it."""
    await client.eval(_RELEASE, 1, keys.models(ns, "lease"), owner)


async def snapshot_version(client: aioredis.Redis, ns: str) -> int | None:
    """The newest snapshot's version (workers poll this)."""
    raw = await client.get(keys.models(ns, "version"))
    return int(raw) if raw else None


async def load_snapshot(client: aioredis.Redis, ns: str) -> Snapshot | None:
    """The newest snapshot, or ``None`` before the trainer published one."""
    raw = await client.get(keys.models(ns, "snapshot"))
    return pickle.loads(raw) if raw else None  # noqa: S301 - trusted state written by the trainer


async def load_info(client: aioredis.Redis, ns: str) -> dict[str, Any] | None:
    """The trainer's latest quality report, or ``None`` before its first snapshot."""
    raw = await client.get(keys.models(ns, "info"))
    return orjson.loads(raw) if raw else None


class SnapshotFollower:
    """The newest model snapshot of a process (workers score with it, the API serves recommendations): polls its version, loads it when it changes."""

    def __init__(self, client: aioredis.Redis, ns: str) -> None:
        self.redis = client
        self.ns = ns
        self.version: int | None = None
        self.current: Snapshot | None = None

    async def refresh(self) -> bool:
        """Load a newer snapshot if one was published; returns whether it did."""
        version = await snapshot_version(self.redis, self.ns)
        if version is None or version == self.version:
            return False
        self.current = await load_snapshot(self.redis, self.ns)
        self.version = version
        log.info("using model snapshot %d", version)
        return True
