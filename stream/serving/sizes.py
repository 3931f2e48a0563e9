"""Segment sizes over time: a member-count sample per segment, kept in Redis as a time series.

Every API process samples every ``SEGSTREAM_SIZES_EVERY`` seconds and writes, per
segment, one point into the sorted set ``ns:sizes:{segment}`` (score: the sample's
time bucket in epoch ms; member: ``"<bucket ms>:<members>"``). A sample's time is
its bucket (the wall clock rounded down to the interval), and writing replaces
the bucket's point, so several API processes sampling together leave one point
per bucket. Points stay at full resolution for ``SEGSTREAM_SIZES_FINE`` seconds;
older ones are thinned to the first bucket of each ``SEGSTREAM_SIZES_COARSE``
period, and points older than ``SEGSTREAM_SIZES_RETENTION`` are dropped.
Reading a range downsamples to at most :data:`MAX_POINTS` steps, each showing the
last sample in it (and the step's minimum and maximum).

>>> bucket(1_700_000_123_456, 60_000)
1700000100000
>>> downsample([(0, 5), (60_000, 7), (120_000, 6)], 0, 180_000, 120_000)
[{'t': 0, 'members': 7, 'min': 5, 'max': 7}, {'t': 120000, 'members': 6, 'min': 6, 'max': 6}]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.config import Settings
from stream.state import keys
from stream.state.profile import parse_time

log = logging.getLogger(__name__)

#: Most points one read answers; longer ranges are downsampled to fit.
MAX_POINTS = 500
#: Most steps a read with an explicit ``step`` may ask for.
MAX_STEPS = 5000
#: The range a read covers without ``from``: the last day.
DEFAULT_RANGE_MS = 86_400_000
#: How far back (ms) each sample looks for points that aged past the fine window: a sampler stopped
#: for up to this long still thins what aged meanwhile (otherwise those points stay until retention drops them).
THIN_LOOKBACK_MS = 86_400_000


@dataclass(frozen=True)
class Policy:
    """Sampling interval, full-resolution window, coarse period and retention, all in ms."""

    every_ms: int
    fine_ms: int
    coarse_ms: int
    retention_ms: int

    @classmethod
    def of(cls, settings: Settings) -> "Policy":
        """The policy of ``SEGSTREAM_SIZES_*``."""
        return cls(
            int(settings.sizes_every_s * 1000),
            int(settings.sizes_fine_s * 1000),
            int(settings.sizes_coarse_s * 1000),
            int(settings.sizes_retention_s * 1000),
        )

    def keeps_coarse(self, t: int) -> bool:
        """Whether the point of bucket ``t`` survives thinning: the first bucket of its coarse period.

        >>> Policy(60_000, 0, 3_600_000, 0).keeps_coarse(3_600_000), Policy(60_000, 0, 3_600_000, 0).keeps_coarse(3_660_000)
        (True, False)
        """
        return t // self.coarse_ms != (t - self.every_ms) // self.coarse_ms


def bucket(now: int, every_ms: int) -> int:
    """The time bucket of a sample taken at ``now``: ``now`` rounded down to the sampling interval."""
    return now - now % every_ms


def member(t: int, count: int) -> str:
    """The sorted-set member of a point (unique per bucket and count)."""
    return f"{t}:{count}"


def parse_member(raw: bytes | str) -> tuple[int, int]:
    """``(t, members)`` of a stored point (inverse of :func:`member`)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    t, _, count = text.partition(":")
    return int(t), int(count)


def to_thin(points: Iterable[tuple[int, int]], policy: Policy) -> list[str]:
    """The members among ``points`` (all past the fine window) that thinning removes.

    >>> to_thin([(3_600_000, 1), (3_660_000, 2)], Policy(60_000, 0, 3_600_000, 0))
    ['3660000:2']
    """
    return [member(t, count) for t, count in points if not policy.keeps_coarse(t)]


def auto_step(start: int, end: int, every_ms: int) -> int:
    """The step of a read from ``start`` to ``end`` without one: the sampling interval, or wider to fit :data:`MAX_POINTS`.

    >>> auto_step(0, 3_600_000, 60_000), auto_step(0, 30 * 86_400_000, 60_000)
    (60000, 5220000)
    """
    needed = -(-(end - start) // MAX_POINTS)
    return max(every_ms, -(-needed // every_ms) * every_ms)


def parse_range(query: Mapping[str, str], now: int, every_ms: int) -> tuple[int, int, int]:
    """``(start, end, step)`` in ms of a read's ``from``, ``to`` (ISO 8601 or epoch ms) and ``step`` (seconds).

    Defaults: ``to`` now, ``from`` a day before ``to``, ``step`` :func:`auto_step`.
    Raises ``ValueError`` saying what is wrong.

    >>> parse_range({"from": "2024-01-01T00:00:00Z", "to": "1704070800000", "step": "60"}, 0, 60_000)
    (1704067200000, 1704070800000, 60000)
    """
    end = _time(query, "to", now)
    start = _time(query, "from", end - DEFAULT_RANGE_MS)
    if start >= end:
        raise ValueError(f"'from' ({start}) must be before 'to' ({end})")
    raw = query.get("step")
    if raw is None:
        return start, end, auto_step(start, end, every_ms)
    try:
        step = round(float(raw) * 1000)
    except ValueError:
        step = 0
    if step < 1000 or (end - start) / step > MAX_STEPS:
        raise ValueError(f"'step' must be a number of seconds, at least 1, giving at most {MAX_STEPS} steps over the range; got {raw!r}")
    return start, end, step


def _time(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw) if raw.isascii() and raw.isdigit() else parse_time(raw)
    except (ValueError, OverflowError):
        raise ValueError(f"{name!r} must be an ISO 8601 time or epoch milliseconds, got {raw[:40]!r}") from None


def downsample(points: Iterable[tuple[int, int]], start: int, end: int, step: int) -> list[dict[str, int]]:
    """Points ``(t, members)`` in time order grouped into steps of ``step`` ms from ``start`` (``end`` excluded).

    Each step is ``{"t": step start, "members": the last sample in it, "min", "max"}``; empty steps are left out.
    """
    out: list[dict[str, int]] = []
    for t, count in points:
        if not start <= t < end:
            continue
        slot = start + (t - start) // step * step
        if out and out[-1]["t"] == slot:
            last = out[-1]
            last.update(members=count, min=min(last["min"], count), max=max(last["max"], count))
        else:
            out.append({"t": slot, "members": count, "min": count, "max": count})
    return out


async def record(client: aioredis.Redis, ns: str, counts: Mapping[str, int], now: int, policy: Policy) -> None:
    """Write one sample per segment for the bucket of ``now``, thin points past the fine window, drop expired ones."""
    t = bucket(now, policy.every_ms)
    aged = t - policy.fine_ms
    read = client.pipeline(transaction=False)
    for name in counts:
        read.zrangebyscore(keys.sizes(ns, name), aged - THIN_LOOKBACK_MS, aged, withscores=False)
    old = await read.execute()
    write = client.pipeline(transaction=True)
    for (name, count), stale in zip(counts.items(), old):
        key = keys.sizes(ns, name)
        write.zremrangebyscore(key, t, t)
        write.zadd(key, {member(t, count): t})
        thinned = to_thin((parse_member(m) for m in stale), policy)
        if thinned:
            write.zrem(key, *thinned)
        write.zremrangebyscore(key, "-inf", f"({t - policy.retention_ms}")
    await write.execute()


async def read(client: aioredis.Redis, ns: str, segment: str, start: int, end: int) -> list[tuple[int, int]]:
    """The stored points of ``segment`` from ``start`` to ``end`` (excluded), in time order."""
    found = await client.zrangebyscore(keys.sizes(ns, segment), start, f"({end}")
    return [parse_member(m) for m in found]


async def sample_forever(
    client: aioredis.Redis, ns: str, counts: Callable[[], Awaitable[Mapping[str, int]]], policy: Policy, clock: Callable[[], int]
) -> None:
    """Record a sample at the start of every bucket, forever (cancel the task to stop); Redis outages are logged and skipped."""
    failing = False
    while True:
        try:
            await record(client, ns, await counts(), clock(), policy)
        except (RedisError, OSError) as exc:
            if not failing:
                log.warning("cannot record segment sizes (%s); retrying every %d ms", exc, policy.every_ms)
            failing = True
        else:
            failing = False
        now = clock()
        await asyncio.sleep((bucket(now, policy.every_ms) + policy.every_ms - now) / 1000)
