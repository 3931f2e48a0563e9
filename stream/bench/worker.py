"""Worker throughput: events/s through ``segstream worker`` processes with the ten bench rules.

``workers`` worker processes are started in one consumer group on a fresh,
empty events topic (8 partitions); once they own every partition (their
heartbeats say so) the events are written to it in one burst, keyed by
customer, far faster than they are processed. The clock starts at the first
batch counted after the burst (the Redis stats counter ``events``), which
leaves the consumer-group join and any rebalance out, and stops when the
counter reaches the number of events. Redis commands in that span (INFO
commandstats: every command, those run inside Lua scripts included) give
segstream's Redis load. Once the group committed every offset and the outbox is
empty, the memberships are read from the Redis member sets for the SQL check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from stream.bench.engine import Env, Proc, encode, wait_until
from stream.bench.errors import BenchError
from stream.bench.progress import Progress
from stream.bench.sql import SEGMENTS
from stream.config import Settings
from stream.state import keys
from stream.state.profile import now_ms

#: Seconds without a counted event before the run is declared stuck.
STALL_S = 90.0


@dataclass
class WorkerRun:
    """One measured run: its figures, its namespace (topic kept for the Kafka ceiling) and the memberships after it."""

    settings: Settings
    figures: dict[str, Any]
    #: Members per segment from the Redis member sets, and from the profiles' own memberships.
    members: dict[str, set[str]]
    profile_members: dict[str, set[str]]
    members_at: int
    #: Kafka records the pre-loaded events went in (envelopes); ``None`` when sent through the collector.
    records: int | None = None


def median_run(runs: list[WorkerRun]) -> dict[str, Any]:
    """The figures of the run with the median events/s, with every run's events/s (in run order) as ``runs_events_per_s``.

    >>> def run(rate): return WorkerRun(None, {"events_per_s": rate}, {}, {}, 0)  # type: ignore[arg-type]
    >>> median_run([run(19_000.0), run(22_000.0), run(20_000.0)])
    {'events_per_s': 20000.0, 'runs_events_per_s': [19000.0, 22000.0, 20000.0]}
    """
    middle = sorted(runs, key=lambda r: r.figures["events_per_s"])[len(runs) // 2]
    return {**middle.figures, "runs_events_per_s": [r.figures["events_per_s"] for r in runs]}


def commands(client: redis.Redis) -> int:
    """Commands the Redis server executed so far (sum of INFO commandstats ``calls``)."""
    return sum(int(row["calls"]) for row in client.info("commandstats").values())


def processed(stats: dict[str, int]) -> int:
    """Events a namespace's workers are done with: counted events plus dead letters."""
    return stats.get("events", 0) + sum(n for name, n in stats.items() if name.startswith("dead_letter:"))


def measure(env: Env, records: list[dict[str, Any]], workers: int, progress: Progress) -> WorkerRun:
    """Run ``workers`` worker processes over ``records``, measure; the caller cleans the namespace up."""
    settings = env.fresh(f"worker{workers}x")
    total = len(records)
    encoded = encode(records)
    started = time.time()
    procs = [env.start(settings, "worker", f"worker{i}") for i in range(workers)]
    try:
        progress.say(f"worker x{workers}: waiting for the consumer group to own all {settings.partitions} partitions")
        env.wait_workers(settings, procs, since_ms=started * 1000)
        joined = time.time() - started
        progress.say(f"worker x{workers}: loading {total:,} events into {settings.events_topic}")
        ends = env.produce(settings, encoded)
        client = env.redis()
        t0, n0, c0 = _baseline(env, settings, client, procs, total)
        t1, n1, c1 = follow(env, settings, procs, total, t0, n0, progress, client)
        env.wait_committed(settings, ends, procs)
        wait_outbox_empty(env, settings)
        stats = env.stats(settings)
        members_at = now_ms()
        members = env.members(settings, SEGMENTS)
        profile_members = env.profile_members(settings, SEGMENTS)
    finally:
        env.stop(procs)
    seconds = max(t1 - t0, 1e-9)
    figures = {
        "workers": workers,
        "events": total,
        "events_measured": n1 - n0,
        "seconds": seconds,
        "events_per_s": (n1 - n0) / seconds,
        "join_s": joined,
        "redis_commands_per_s": (c1 - c0) / seconds,
        "redis_commands_per_event": (c1 - c0) / max(n1 - n0, 1),
        "changes": stats.get("changes", 0),
        "dead_letters": sum(n for name, n in stats.items() if name.startswith("dead_letter:")),
        "redelivered": processed(stats) - total,
    }
    progress.say(f"worker x{workers}: {figures['events_per_s']:,.0f} events/s over {n1 - n0:,} events")
    return WorkerRun(settings, figures, members, profile_members, members_at, records=sum(ends.values()))


def _baseline(env: Env, settings: Settings, client: redis.Redis, procs: list[Proc], total: int) -> tuple[float, int, int]:
    """The first moment the counter shows processed events: (monotonic time, events, Redis commands)."""
    deadline = time.monotonic() + STALL_S
    while time.monotonic() < deadline:
        env.check_alive(procs)
        c = commands(client)
        n = processed(env.stats(settings))
        if n > 0:
            if n >= total:
                raise BenchError(f"the workers processed all {total:,} events while they were being written; use more --events")
            return time.monotonic(), n, c
        time.sleep(0.05)
    raise BenchError(f"no event was processed within {STALL_S:.0f}s; worker log:\n{procs[0].log_tail()}")


def follow(
    env: Env,
    settings: Settings,
    procs: list[Proc],
    total: int,
    t0: float,
    n0: int,
    progress: Progress,
    client: redis.Redis | None = None,
) -> tuple[float, int, int]:
    """Poll the counter until ``total`` events are processed: (monotonic time, events, Redis commands) then.

    ``client`` counts Redis commands (0 without); a run that counts nothing for
    :data:`STALL_S` seconds, or a process that exits, is a :class:`BenchError`.
    """
    last_n, last_change = n0, time.monotonic()
    while True:
        env.check_alive(procs)
        n = processed(env.stats(settings))
        c = commands(client) if client is not None else 0
        now = time.monotonic()
        if n >= total:
            return now, n, c
        if n != last_n:
            last_n, last_change = n, now
        elif now - last_change > STALL_S:
            raise BenchError(f"stuck at {n:,}/{total:,} events for {STALL_S:.0f}s; worker log:\n{procs[0].log_tail()}")
        rate = (n - n0) / max(now - t0, 1e-9)
        progress.update(f"{n:,}/{total:,} events, {rate:,.0f}/s")
        time.sleep(0.1)


def wait_outbox_empty(env: Env, settings: Settings) -> None:
    """Wait until every decided change was published and applied to the member sets."""
    client = env.redis()

    def empty() -> bool:
        return all(client.zcard(keys.pending(settings.namespace, p)) == 0 for p in range(settings.partitions))

    wait_until(empty, 60, "the workers' outboxes to empty")
