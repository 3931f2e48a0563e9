"""``/healthz`` and ``/readyz`` for every process, and the readiness checks they run.

``/healthz`` answers 200 while the process serves HTTP at all (liveness: restart it
when this fails). ``/readyz`` runs the process's checks — Redis answers a PING,
Kafka answers a metadata request, the worker owns partitions — and answers 200
``{"status": "ready", "checks": {...: "ok"}}`` or 503 naming what is wrong
(readiness: send it no traffic, or wait, while this fails). Neither needs a key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from confluent_kafka.admin import AdminClient
from redis.exceptions import RedisError

from stream.config import Settings
from stream.kafka import admin

#: A readiness check: ``None`` when fine, else what is wrong and what to do.
Check = Callable[[], Awaitable[str | None]]
#: Seconds one check may take before it counts as failed.
CHECK_TIMEOUT_S = 2.0
#: Paths served without a key.
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


def add_health_routes(app: web.Application, checks: Mapping[str, Check]) -> None:
    """Serve ``/healthz`` (always 200) and ``/readyz`` (200 when every check passes, else 503) on ``app``."""
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", partial(_readyz, checks))


async def readiness(checks: Mapping[str, Check]) -> dict[str, str]:
    """Each check's verdict: ``"ok"`` or what is wrong (checks run concurrently, each bounded in time)."""
    names = list(checks)
    results = await asyncio.gather(*(_verdict(checks[name]) for name in names))
    return dict(zip(names, results))


async def _verdict(check: Check) -> str:
    try:
        problem = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except asyncio.TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g}s"
    return problem or "ok"


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(checks: Mapping[str, Check], request: web.Request) -> web.Response:
    verdicts = await readiness(checks)
    ready = all(v == "ok" for v in verdicts.values())
    body = {"status": "ready" if ready else "not ready", "checks": verdicts}
    return web.Response(body=orjson.dumps(body), status=200 if ready else 503, content_type="application/json")


def redis_check(client: aioredis.Redis) -> Check:
    """Redis answers a PING."""

    async def check() -> str | None:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            return f"Redis does not answer PING ({exc}); check REDIS_URL and that redis-server runs"
        return None

    return check


def kafka_check(settings: Settings) -> Check:
    """Kafka answers a metadata request for the events topic (one admin client, reused)."""
    client: list[AdminClient] = []

    def probe() -> str | None:
        if not client:
            client.append(admin(settings))
        try:
            topic = client[0].list_topics(settings.events_topic, timeout=CHECK_TIMEOUT_S).topics.get(settings.events_topic)
        except Exception as exc:  # noqa: BLE001 - any failure means Kafka is not usable; reported
            return f"Kafka at {settings.kafka_bootstrap} does not answer ({exc}); check KAFKA_BOOTSTRAP and the broker"
        if topic is None or topic.error is not None:
            return f"topic {settings.events_topic} is missing at {settings.kafka_bootstrap}; the collector and worker create it"
        return None

    async def check() -> str | None:
        return await asyncio.to_thread(probe)

    return check
