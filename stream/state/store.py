"""Redis edge of the worker: load profiles, commit them atomically, track timers and the outbox.

The atomic step is one Lua script per customer (all keys under the customer's hash
tag, so it runs on Redis Cluster too): it checks the profile version read before
(optimistic concurrency), writes the new profile — whose applied Kafka offsets are
the dedup mark — and appends the decided changes to the customer's outbox. State,
dedup mark and outbox therefore change together or not at all. Keys that span
customers (timers, pending markers, segment member sets) are updated around that
step in an order that makes a crash at any point recoverable; see ``commit`` and
``confirm_published``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, Sequence

import orjson
import redis.asyncio as aioredis

from stream.models.records import TrainingRecord
from stream.output.changes import Change
from stream.output.deletions import Deletion
from stream.output.routed import Routed
from stream.state import keys
from stream.state.pipeline import Command, Exchange, raise_errors, round_trip
from stream.state.profile import Profile

#: What a customer's outbox holds until Kafka acknowledged it: segment changes (field: their
#: ``seq``), training records (``t:<kind>:<at>``), deletions (``d:<at>``) and records routed
#: to another customer's owner (``r:<messageId>``).
Outbound = Change | TrainingRecord | Deletion | Routed
#: A pending marker: ``(customer id, outbox field)``.
Marker = tuple[str, int | str]
#: An outbound entry and its record bytes.
Payload = tuple["Outbound", bytes]


def outbox_field(entry: Outbound) -> int | str:
    """The outbox field of an entry (and the second half of its pending marker)."""
    return entry.seq if isinstance(entry, Change) else entry.field


def _marker(customer_id: str, entry: Outbound) -> bytes:
    return orjson.dumps([customer_id, outbox_field(entry)])


def _counting(key: str, counters: Mapping[str, int]) -> list[Command]:
    return [(b"HINCRBY", key, name, n) for name, n in counters.items() if n]


def _entry(customer_id: str, marker_field: int | str, raw: bytes) -> Outbound:
    if isinstance(marker_field, int):
        return Change.from_bytes(raw)
    if marker_field.startswith("r:"):
        return Routed.from_bytes(customer_id, raw)
    return Deletion.from_bytes(raw) if marker_field.startswith("d:") else TrainingRecord.from_bytes(raw)

def stored(version: int, profile: Profile) -> bytes:
    """A profile key's value: ``<version>:<profile JSON>`` (a string, not a hash: a hash
    with a value over 64 bytes leaves Redis's compact encoding, ~200 bytes per customer)."""
    return b"%d:%s" % (version, profile.to_bytes())


def split_stored(raw: bytes | None) -> tuple[int, bytes | None]:
    """The version and profile JSON of a profile key's value (``(0, None)`` for no key)."""
    if not raw:
        return 0, None
    version, _, blob = raw.partition(b":")
    return int(version), blob


def read_stored(raw: bytes | None) -> Profile | None:
    """The profile in a profile key's value, ``None`` for no key."""
    blob = split_stored(raw)[1]
    return Profile.from_bytes(blob) if blob else None


_COMMIT = """
local current = redis.call('GET', KEYS[1])
local version = current and tonumber(string.match(current, '^(%d+):')) or 0
if version ~= tonumber(ARGV[1]) then return -1 end
version = version + 1
redis.call('SET', KEYS[1], version .. ':' .. ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return version
"""
_COMMIT_SHA = hashlib.sha1(_COMMIT.encode()).hexdigest()


@dataclass
class Loaded:
    """A profile as read, with the version its commit must find unchanged."""

    version: int
    profile: Profile


@dataclass
class Commit:
    """What one customer's atomic step writes."""

    loaded: Loaded
    changes: list[Change] = field(default_factory=list)
    training: list[TrainingRecord] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    routed: list[Routed] = field(default_factory=list)

    @property
    def outbound(self) -> list[Outbound]:
        """Everything this commit puts in the outbox, changes first."""
        return [*self.changes, *self.training, *self.deletions, *self.routed]

    #: The loaded profile's customer id (read often: a field, not a property).
    customer_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.customer_id = self.loaded.profile.customer_id

    @cached_property
    def payloads(self) -> list[Payload]:
        """Each outbound entry with its record, encoded once for the outbox and for Kafka."""
        return [(e, e.to_bytes()) for e in self.outbound]


@dataclass
class Staged:
    """Commits built into Redis commands, not sent yet (see :meth:`ProfileStore.stage`)."""

    commits: Sequence[Commit]
    commands: list[Command]
    #: Index of the first commit's command (pending markers come before).
    first: int

    def refused(self, replies: Sequence[Any]) -> list[str]:
        """The ids whose commit found the version moved (retry them), from the replies to :attr:`commands`."""
        raise_errors(replies)
        return [c.customer_id for c, r in zip(self.commits, replies[self.first :]) if r == -1]


#: Seconds a batch's round trip to Redis may take before it fails (and is retried).
ROUND_TRIP_TIMEOUT_S = 10.0


class ProfileStore:
    """Profiles, outbox, timers and membership sets of one namespace in Redis.

    ``bulk``, when given, is a client without a per-reply socket timeout for the
    per-batch round trips (load, commit, confirm; see :mod:`stream.state.pipeline`):
    each part of a round trip (its write, its replies) is bounded instead, which spares
    a timer per reply.
    Commands that touch one cross-customer key (a partition's timers or pending
    markers, a segment's member set) are grouped into one command per key.
    """

    def __init__(self, client: aioredis.Redis, namespace: str, bulk: aioredis.Redis | None = None) -> None:
        self.redis = client
        self.bulk = bulk if bulk is not None else client
        self.ns = namespace

    async def _round_trip(self, commands: list[Command], client: aioredis.Redis | None = None) -> list[Any]:
        replies = await round_trip(client or self.bulk, commands, ROUND_TRIP_TIMEOUT_S)
        raise_errors(replies)
        return replies

    async def load(self, customer_ids: Sequence[str]) -> dict[str, Loaded]:
        """Read the profiles of ``customer_ids`` in one round trip (new customers get empty profiles)."""
        return self._loaded(customer_ids, await self._round_trip(self._gets(customer_ids)))

    async def load_ahead(self, customer_ids: Sequence[str], staged: Staged | None) -> tuple[dict[str, Loaded], Exchange]:
        """Read the profiles of ``customer_ids``, sending ``staged``'s commits right behind in the same write.

        Returns once the profiles are read; Redis runs the commits meanwhile, and their
        replies wait in the returned exchange for :meth:`refused`; the caller closes it. The
        profiles are read before the commits are applied: a caller must not load a
        customer that ``staged`` commits.
        """
        exchange = Exchange(self.bulk, ROUND_TRIP_TIMEOUT_S)
        try:
            gets = self._gets(customer_ids)
            await exchange.send(gets + (staged.commands if staged is not None else []))
            rows = await exchange.read(len(gets))
            raise_errors(rows)
            return self._loaded(customer_ids, rows), exchange
        except BaseException:
            await exchange.close()
            raise

    async def refused(self, staged: Staged | None, exchange: Exchange) -> list[str]:
        """Read the replies of ``staged``'s commits sent by :meth:`load_ahead`; the ids whose version moved."""
        return staged.refused(await exchange.read(len(staged.commands))) if staged is not None else []

    def _gets(self, customer_ids: Sequence[str]) -> list[Command]:
        return [(b"GET", keys.profile(self.ns, cid)) for cid in customer_ids]

    @staticmethod
    def _loaded(customer_ids: Sequence[str], rows: Sequence[Any]) -> dict[str, Loaded]:
        out: dict[str, Loaded] = {}
        for cid, raw in zip(customer_ids, rows):
            version, blob = split_stored(raw)
            out[cid] = Loaded(version, Profile.from_bytes(blob) if blob else Profile(customer_id=cid))
        return out

    async def commit(
        self,
        commits: Sequence[Commit],
        now: int,
        timers: Iterable[Profile] = (),
        counters: Mapping[str, int] | None = None,
    ) -> list[str]:
        """Write each customer's profile and outbox atomically (see :meth:`stage`) in one round trip;
        return the ids whose version moved (retry them)."""
        return await self.send(self.stage(commits, now, timers, counters))

    async def send(self, staged: Staged) -> list[str]:
        """Send ``staged``'s commands in one round trip; the ids whose commit found the version moved."""
        return staged.refused(await round_trip(self.bulk, staged.commands, ROUND_TRIP_TIMEOUT_S))

    def stage(
        self,
        commits: Sequence[Commit],
        now: int,
        timers: Iterable[Profile] = (),
        counters: Mapping[str, int] | None = None,
    ) -> Staged:
        """The commands that write each customer's profile and outbox atomically.

        Pending markers for the outbox entries come first: Redis runs a connection's
        commands in order (and its append-only file keeps that order), so no decided
        change can exist without a marker pointing at it; a marker whose commit was
        refused points at nothing and is dropped by recovery. Then the commits, then
        ``timers`` (each profile's next deadline on its partition's timer set, or its
        removal) and ``counters``; a timer set for a customer whose commit was refused
        is set again by its retry.
        """
        markers: dict[int, list[bytes | str | int]] = {}
        for c in commits:
            for e, _ in c.payloads:
                markers.setdefault(c.loaded.profile.partition or 0, []).extend((now, _marker(c.customer_id, e)))
        # The script is loaded once per round trip (even a restarted Redis has it) and called by its digest.
        commands: list[Command] = [(b"SCRIPT", b"LOAD", _COMMIT)] if commits else []
        commands += [(b"ZADD", keys.pending(self.ns, p), *members) for p, members in markers.items()]
        first = len(commands)
        for c in commits:
            outbox_args: list[bytes | str | int] = []
            for e, raw in c.payloads:
                outbox_args += [outbox_field(e), raw]
            commands.append(
                (
                    b"EVALSHA",
                    _COMMIT_SHA,
                    2,
                    keys.profile(self.ns, c.customer_id),
                    keys.outbox(self.ns, c.customer_id),
                    c.loaded.version,
                    c.loaded.profile.to_bytes(),
                    *outbox_args,
                )
            )
        due: dict[int, list[bytes | str | int]] = {}
        gone: dict[int, list[bytes | str | int]] = {}
        for p in timers:
            if p.deadline is None:
                gone.setdefault(p.partition or 0, []).append(p.customer_id)
            else:
                due.setdefault(p.partition or 0, []).extend((p.deadline, p.customer_id))
        commands += [(b"ZADD", keys.timers(self.ns, partition), *members) for partition, members in due.items()]
        commands += [(b"ZREM", keys.timers(self.ns, partition), *members) for partition, members in gone.items()]
        commands += _counting(keys.stats(self.ns), counters or {})
        return Staged(commits, commands, first)

    async def due(self, partitions: Iterable[int], now: int, limit: int = 500) -> dict[int, list[str]]:
        """Customers of each of ``partitions`` whose deadline is at or before ``now`` (one round trip)."""
        parts = list(partitions)
        rows = await self._ranges(keys.timers, parts, now, limit)
        return {p: [r.decode() for r in row] for p, row in zip(parts, rows)}

    async def _ranges(self, key: Callable[[str, int], str], partitions: list[int], up_to: int, limit: int) -> list[list[bytes]]:
        commands: list[Command] = [(b"ZRANGEBYSCORE", key(self.ns, p), b"-inf", up_to, b"LIMIT", 0, limit) for p in partitions]
        return await self._round_trip(commands, self.redis)

    async def earliest_deadline(self, partitions: Iterable[int]) -> int | None:
        """The earliest registered deadline over ``partitions``."""
        pipe = self.redis.pipeline(transaction=False)
        parts = list(partitions)
        for p in parts:
            pipe.zrange(keys.timers(self.ns, p), 0, 0, withscores=True)
        rows = await pipe.execute() if parts else []
        scores = [int(row[0][1]) for row in rows if row]
        return min(scores) if scores else None

    async def confirm_published(
        self, entries: Sequence[Outbound], partitions: dict[str, int], memberships: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        """After Kafka acknowledged ``entries``: update member sets, then clear outbox entries and markers.

        A member set follows the last change of each customer to it. Republished
        entries (recovery) may be older than changes already applied: then
        ``memberships`` (customer id -> the segments its profile is in now) decides each
        member set, not the change.
        """
        if not entries:
            return
        changes = [e for e in entries if isinstance(e, Change)]
        current = {cid: set(names) for cid, names in memberships.items()} if memberships is not None else None
        last = {(ch.segment, ch.customer_id): ch.change == "entered" for ch in changes}
        if current is not None:
            last = {(segment, cid): segment in current[cid] for segment, cid in last}
        added: dict[str, list[bytes | str | int]] = {}
        removed: dict[str, list[bytes | str | int]] = {}
        for (segment, cid), member in last.items():
            if member:
                added.setdefault(segment, []).extend((0, cid))
            else:
                removed.setdefault(segment, []).append(cid)
        commands: list[Command] = [(b"ZADD", keys.segment(self.ns, s), *members) for s, members in added.items()]
        commands += [(b"ZREM", keys.segment(self.ns, s), *members) for s, members in removed.items()]
        fields: dict[str, list[bytes | str | int]] = {}
        markers: dict[int, list[bytes | str | int]] = {}
        for e in entries:
            fields.setdefault(e.customer_id, []).append(outbox_field(e))
            markers.setdefault(partitions.get(e.customer_id, 0), []).append(_marker(e.customer_id, e))
        commands += [(b"HDEL", keys.outbox(self.ns, cid), *names) for cid, names in fields.items()]
        commands += [(b"ZREM", keys.pending(self.ns, p), *members) for p, members in markers.items()]
        deletions = sum(isinstance(e, Deletion) for e in entries)
        training = sum(isinstance(e, TrainingRecord) for e in entries)
        commands += _counting(keys.stats(self.ns), {"changes": len(changes), "training_records": training, "deletions": deletions})
        await self._round_trip(commands)

    async def stale_pending(self, partitions: Iterable[int], older_than: int, limit: int = 1000) -> dict[int, list[Marker]]:
        """Markers of each of ``partitions`` decided before ``older_than`` (ms) and still unconfirmed (one round trip)."""
        parts = list(partitions)
        rows = await self._ranges(keys.pending, parts, older_than, limit)
        return {p: [tuple(orjson.loads(r)) for r in row] for p, row in zip(parts, rows)}  # type: ignore[misc]

    async def outbox_entries(self, markers: Sequence[Marker]) -> list[Outbound | None]:
        """The outbox entries the markers point at (``None`` where already published)."""
        pipe = self.redis.pipeline(transaction=False)
        for cid, name in markers:
            pipe.hget(keys.outbox(self.ns, cid), name)
        rows = await pipe.execute()
        return [_entry(cid, name, raw) if raw else None for (cid, name), raw in zip(markers, rows)]

    async def drop_markers(self, partition: int, markers: Sequence[Marker]) -> None:
        """Remove markers whose outbox entry is gone (published, or never committed)."""
        if markers:
            await self.redis.zrem(keys.pending(self.ns, partition), *[orjson.dumps(list(m)) for m in markers])

    async def heartbeat(self, worker: str, partitions: list[int], now: int) -> None:
        """Record which events-topic partitions this worker owns right now."""
        await self.redis.hset(keys.workers(self.ns), worker, orjson.dumps({"partitions": partitions, "at": now}))

    async def count(self, **counters: int) -> None:
        """Add to the namespace's counters (``dead_letter:<reason>`` names allowed via ``**{}``)."""
        pipe = self.redis.pipeline(transaction=False)
        for name, n in counters.items():
            if n:
                pipe.hincrby(keys.stats(self.ns), name, n)
        await pipe.execute()

