"""One-shot Redis work for commands: a fresh client of ``REDIS_URL``, closed when the work is done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis

from stream.config import Settings

T = TypeVar("T")


def run_with_redis(settings: Settings, work: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run ``work(client)`` in a new event loop with a client of ``settings.redis_url``; close the client after."""

    async def go() -> T:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(go())
