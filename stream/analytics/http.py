"""The query API's analytics endpoints (scope read).

``GET /v1/analytics/overlap[?segments=a,b,c]`` answers the overlap report of
:func:`stream.analytics.intersections.measure_overlap` for the named segments (default: every
segment of the deployed rules), ``400 {"error"}`` naming unknown segments or asking for fewer
than ``SEGSTREAM_ANALYTICS_MAX_SEGMENTS``. ``GET /v1/analytics/performance`` answers the
performance report ``segstream analytics performance … --save`` stored last (a replay of the
events is too long for a request), ``404 {"error"}`` saying so when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Handler

from stream.analytics.errors import AnalyticsError
from stream.analytics.intersections import measure_overlap
from stream.analytics.overlap import OverlapThresholds, select_segments
from stream.config import Settings
from stream.rules import RuleSet
from stream.state import keys


def thresholds(settings: Settings) -> OverlapThresholds:
    """The overlap warning thresholds of ``settings``."""
    return OverlapThresholds(settings.analytics_duplicate_jaccard, settings.analytics_subset_share, settings.analytics_min_members)


def requested_segments(text: str | None) -> list[str] | None:
    """The segment names of a comma-separated list (``None`` when absent or blank: all).

    >>> requested_segments("a, b,,c"), requested_segments(None)
    (['a', 'b', 'c'], None)
    """
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return names or None


async def save_performance(client: aioredis.Redis, ns: str, report: dict[str, Any]) -> None:
    """Keep ``report`` (with when and from what it was computed) for ``GET /v1/analytics/performance``."""
    await client.set(keys.analytics(ns, "performance"), orjson.dumps(report))


def performance_handler(client: aioredis.Redis, ns: str) -> Handler:
    """The handler of ``GET /v1/analytics/performance``: the last saved report."""

    async def performance(request: web.Request) -> web.Response:
        raw = await client.get(keys.analytics(ns, "performance"))
        if raw is None:
            error = "no performance report yet: run `segstream analytics performance SOURCE --save` (README, Segment analytics)"
            return web.Response(body=orjson.dumps({"error": error}), status=404, content_type="application/json")
        return web.Response(body=raw, content_type="application/json")

    return performance


def overlap_handler(settings: Settings, client: aioredis.Redis, ruleset: Callable[[], RuleSet]) -> Handler:
    """The handler of ``GET /v1/analytics/overlap``; ``ruleset()`` gives the deployed rules at request time."""

    async def overlap(request: web.Request) -> web.Response:
        known = sorted(ruleset().segments)
        try:
            names = select_segments(requested_segments(request.query.get("segments")), known, settings.analytics_max_segments)
        except AnalyticsError as exc:
            return web.Response(body=orjson.dumps({"error": str(exc)}), status=400, content_type="application/json")
        report = await measure_overlap(client, settings.namespace, names, thresholds(settings))
        return web.Response(body=orjson.dumps(report), content_type="application/json")

    return overlap
