"""An LRU cache whose entries expire: what an HTTP enricher remembers, found or not found.

>>> now = [0.0]
>>> cache = TTLCache(max_size=2, clock=lambda: now[0])
>>> cache.put("acme.com", {"name": "Acme"}, ttl_s=60)
>>> cache.get("acme.com")
{'name': 'Acme'}
>>> now[0] = 61
>>> cache.get("acme.com") is MISS
True
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: What :meth:`TTLCache.get` returns for a key it does not hold (``None`` and ``{}`` are values).
MISS: Any = object()


class TTLCache:
    """At most ``max_size`` entries, least recently used out first, each kept ``ttl_s`` seconds."""

    def __init__(self, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any:
        """The value of ``key``, or :data:`MISS` when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return MISS
        if entry[0] <= self._clock():
            del self._entries[key]
            return MISS
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: Any, ttl_s: float) -> None:
        """Remember ``value`` for ``ttl_s`` seconds (not at all when ``ttl_s`` <= 0)."""
        if ttl_s <= 0 or self.max_size <= 0:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
