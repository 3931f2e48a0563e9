"""Segment sizes and pairwise intersections read from the member sets ``ns:seg:{segment}`` in Redis.

Cost: N segments make N·(N−1)/2 pairs, each one ``ZINTERCARD`` (Redis ≥ 7), which walks the
smaller set — so the whole matrix costs about Σ min(|A|, |B|) lookups over the pairs, and
reads nothing into the client. Pairs are sent in pipelined chunks of :data:`CHUNK` so other
clients interleave between them, and the number of segments per request is capped
(``SEGSTREAM_ANALYTICS_MAX_SEGMENTS``). Pairs with an empty side are not asked (0).
On Redis < 7 each pair is ``ZINTERSTORE`` into a temporary key ``ns:tmp:overlap:<uuid>``
(deleted in the same pipeline, and set to expire after a minute should the client die).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from stream.analytics.overlap import OverlapThresholds, Pair, overlap_report, pairs
from stream.state import keys

#: Pairs per pipelined round trip.
CHUNK = 200


async def segment_sizes(client: aioredis.Redis, ns: str, names: Sequence[str]) -> dict[str, int]:
    """Current members of each segment, in the order of ``names`` (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.zcard(keys.segment(ns, name))
    return dict(zip(names, await pipe.execute()))


async def intersections(
    client: aioredis.Redis,
    ns: str,
    sizes: dict[str, int],
    progress: Callable[[int, int], None] | None = None,
) -> dict[Pair, int]:
    """Members common to each pair of :func:`stream.analytics.overlap.pairs` of ``sizes``' names.

    ``progress(done, total)`` is called after each chunk of pairs.
    """
    every = pairs(list(sizes))
    common = {pair: 0 for pair in every if not (sizes[pair[0]] and sizes[pair[1]])}
    asked = [pair for pair in every if pair not in common]
    count = _intercard
    for start in range(0, len(asked), CHUNK):
        chunk = asked[start : start + CHUNK]
        try:
            answers = await count(client, ns, chunk)
        except ResponseError as exc:
            if "unknown command" not in str(exc).lower() or count is _interstore:
                raise
            count = _interstore  # Redis < 7: no ZINTERCARD
            answers = await count(client, ns, chunk)
        common.update(zip(chunk, answers))
        if progress is not None:
            progress(len(common), len(every))
    return common


async def _intercard(client: aioredis.Redis, ns: str, chunk: list[Pair]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for a, b in chunk:
        pipe.zintercard(2, [keys.segment(ns, a), keys.segment(ns, b)])
    return [int(n) for n in await pipe.execute()]


async def _interstore(client: aioredis.Redis, ns: str, chunk: list[Pair]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    temporary = f"{ns}:tmp:overlap:{uuid.uuid4().hex}"
    for a, b in chunk:
        pipe.zinterstore(temporary, [keys.segment(ns, a), keys.segment(ns, b)])
        pipe.expire(temporary, 60)
        pipe.delete(temporary)
    return [int(n) for n in (await pipe.execute())[::3]]


async def measure_overlap(
    client: aioredis.Redis,
    ns: str,
    names: list[str],
    thresholds: OverlapThresholds,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """:func:`stream.analytics.overlap.overlap_report` of ``names`` from their member sets now."""
    sizes = await segment_sizes(client, ns, names)
    return overlap_report(sizes, await intersections(client, ns, sizes, progress), thresholds)
