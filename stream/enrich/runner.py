"""The runner: every enricher at once for a profile, with one overall deadline.

An enricher that misses the deadline is cancelled and adds nothing this time; one
that raises or answers something other than a dict is counted and logged, and adds
nothing. Traits of later enrichers (in config order) win a name clash.

>>> import asyncio
>>> class Hello:
...     name = "hello"
...     async def enrich(self, view):
...         return {"hello.to": view["customer_id"]}
>>> asyncio.run(Enrichment([Hello()]).enrich({"customer_id": "alice"}))
{'hello.to': 'alice'}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from stream.enrich.enricher import Enricher

log = logging.getLogger("stream.enrich")
#: Default overall deadline of :meth:`Enrichment.enrich`, seconds.
DEADLINE_S = 0.25


class Enrichment:
    """Runs ``enrichers`` concurrently for a profile within ``deadline_s``; :meth:`stats` counts per enricher."""

    def __init__(self, enrichers: Sequence[Enricher], deadline_s: float = DEADLINE_S) -> None:
        names = [e.name for e in enrichers]
        if len(set(names)) != len(names):
            raise ValueError(f"enricher names must be unique, got {names}; rename one")
        self.enrichers = list(enrichers)
        self.deadline_s = deadline_s
        self._counts = {e.name: {"runs": 0, "errors": 0, "late": 0} for e in enrichers}
        self._runs = 0

    async def enrich(self, profile_view: Mapping[str, Any]) -> dict[str, Any]:
        """The traits every enricher that answered in time adds, merged in enricher order."""
        self._runs += 1
        if not self.enrichers:
            return {}
        tasks = [asyncio.ensure_future(e.enrich(profile_view)) for e in self.enrichers]
        done, pending = await asyncio.wait(tasks, timeout=self.deadline_s)
        for task in pending:
            task.cancel()
            task.add_done_callback(_retrieve)
        traits: dict[str, Any] = {}
        for enricher, task in zip(self.enrichers, tasks):
            counts = self._counts[enricher.name]
            counts["runs"] += 1
            if task in pending:
                counts["late"] += 1
            elif (exc := task.exception()) is not None:
                counts["errors"] += 1
                log.error("enricher %s failed: %r", enricher.name, exc)
            elif not isinstance(result := task.result(), dict):
                counts["errors"] += 1
                log.error("enricher %s returned %s, not a dict of traits", enricher.name, type(result).__name__)
            else:
                traits.update(result)
        return traits

    def stats(self) -> dict[str, Any]:
        """``{"runs": n, "enrichers": {name: {runs, errors, late, ...the enricher's own stats()}}}``."""
        enrichers = {}
        for enricher in self.enrichers:
            own = enricher.stats() if hasattr(enricher, "stats") else {}
            enrichers[enricher.name] = {**self._counts[enricher.name], **own}
        return {"runs": self._runs, "deadline_s": self.deadline_s, "enrichers": enrichers}

    async def close(self) -> None:
        """Close every enricher that has a ``close()``."""
        for enricher in self.enrichers:
            if hasattr(enricher, "close"):
                await enricher.close()


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Fetch a cancelled task's outcome, so an enricher that ignored the cancellation and failed is logged, not lost."""
    if not task.cancelled() and task.exception() is not None:
        log.error("enricher failed after the deadline: %r", task.exception())
