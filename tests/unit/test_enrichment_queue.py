"""The worker's enrichment queue: bounded runs, and skipped offers counted without piling up tasks."""

from __future__ import annotations

import asyncio
from typing import Any

from stream.config import Settings
from stream.state.profile import Profile
from stream.worker.enrichment import MAX_RUNNING, EnrichmentQueue


class Stuck:
    """An enricher run that never ends (a slow provider)."""

    async def enrich(self, view: Any) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}


class Counts:
    """The store's counters, with how many count calls were in flight at once."""

    def __init__(self) -> None:
        self.total: dict[str, int] = {}
        self.in_flight = self.most_in_flight = 0

    async def count(self, **counters: int) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        for name, n in counters.items():
            self.total[name] = self.total.get(name, 0) + n
        self.in_flight -= 1


def test_offers_beyond_the_limit_are_counted_by_one_task_at_a_time() -> None:
    # 10,000 identifies while every run is stuck: each used to spawn a counting task of its
    # own, never removed, until the Redis connection pool ran out (redis-py 8 caps it at 100).
    store = Counts()

    async def main() -> EnrichmentQueue:
        queue = EnrichmentQueue(Settings(), Stuck(), None, store)  # type: ignore[arg-type] - no run gets to produce
        for i in range(10_000):
            queue.offer(Profile(f"c{i}"))
            if i % 500 == 0:
                await asyncio.sleep(0)
        while queue.skipped or (queue._counting is not None and not queue._counting.done()):
            await asyncio.sleep(0.01)
        assert len(queue.running) == MAX_RUNNING
        for task in queue.running:
            task.cancel()
        return queue

    asyncio.run(main())
    assert store.total == {"enrichment_skipped": 10_000 - MAX_RUNNING}
    assert store.most_in_flight == 1
