"""Profile snapshots: every live profile's memberships, traits and scores, scanned from Redis in chunks.

A snapshot is written into a temporary directory and renamed to
``profiles/snapshot_at=<time>/`` once every part is durable, so a reader sees a
whole snapshot or none. Forgotten customers (tombstones) and ids merged into another
customer (redirects) are left out: they hold no data of their own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import redis

from stream.config import Settings
from stream.state import keys, rulestore
from stream.state.connection import run_with_redis
from stream.state.profile import Profile, iso
from stream.state.store import read_stored
from stream.warehouse.layout import PROFILES, snapshot_dir
from stream.warehouse.parquet import PROFILE_COLUMNS, fsync, write_parquet

#: Profiles read from Redis per round trip (SCAN count and pipeline size).
CHUNK = 1000
#: Most profiles per Parquet part file.
PART_ROWS = 200_000

Points = Callable[[Profile], Mapping[str, float]]


def profile_row(profile: Profile, points: Mapping[str, float]) -> dict[str, Any] | None:
    """A snapshot row of ``profile`` (``points``: its declared scores now), ``None`` for a tombstone or redirect.

    >>> profile_row(Profile("ann", memberships={"vip": 0}), {})["segments"]
    [{'segment': 'vip', 'entered_at': '1970-01-01T00:00:00.000Z'}]
    """
    if profile.forgotten is not None or profile.merged_into is not None:
        return None
    scores = {name: entry["value"] for name, entry in profile.public(points)["scores"].items()}
    return {
        "customer_id": profile.customer_id,
        "segments": [{"segment": name, "entered_at": iso(at)} for name, at in sorted(profile.memberships.items())],
        "traits": profile.traits,
        "scores": scores,
        "event_counts": profile.counts,
        "revenue": profile.revenue,
        "first_seen": iso(profile.first_seen),
        "last_seen": iso(profile.last_seen),
        "aliases": profile.aliases,
    }


def profile_rows(client: redis.Redis, ns: str, points: Points) -> Iterator[dict[str, Any]]:
    """Every live profile's row, SCANning the namespace's profile keys ``CHUNK`` at a time."""
    cursor = 0
    while True:
        cursor, found = client.scan(cursor, match=keys.profile_pattern(ns), count=CHUNK)
        for start in range(0, len(found), CHUNK):
            pipe = client.pipeline(transaction=False)
            for key in found[start : start + CHUNK]:
                pipe.get(key)
            for raw in pipe.execute():
                profile = read_stored(raw)
                row = None if profile is None else profile_row(profile, points(profile))
                if row is not None:
                    yield row
        if cursor == 0:
            return


def declared_points(settings: Settings, at: int) -> Points:
    """The declared scores of a profile at ``at`` under the deployed rules (none deployed: no declared scores)."""

    found = run_with_redis(settings, lambda client: rulestore.fetch(client, settings.namespace))
    if found is None:
        return lambda profile: {}
    ruleset = rulestore.materialise(found.files, settings.state_dir / "deployed-rules")
    return lambda profile: ruleset.points_at(profile, at)


def write_snapshot(settings: Settings, root: Path, at: int) -> int:
    """Write the snapshot of every profile as of ``at`` (epoch ms) under ``root``; returns the profiles written."""
    stamp = str(iso(at))[:19] + "Z"
    final = root / snapshot_dir(stamp)
    staging = root / PROFILES / f".{final.name}.tmp"
    for stale in (root / PROFILES).glob(".snapshot_at=*.tmp"):
        shutil.rmtree(stale)  # left by a crash: never renamed, never read
    staging.mkdir(parents=True)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        rows = profile_rows(client, settings.namespace, declared_points(settings, at))
        total, part = 0, 0
        while True:
            target = staging / f"part-{part}.parquet"
            written = write_parquet(islice(rows, PART_ROWS), PROFILE_COLUMNS, target)
            total += written
            if written < PART_ROWS:
                if written == 0 and part > 0:
                    target.unlink()
                break
            part += 1
    finally:
        client.close()
    if final.exists():
        shutil.rmtree(final)  # a snapshot of the same second: this one is as new
    os.replace(staging, final)
    fsync(final.parent)
    return total
