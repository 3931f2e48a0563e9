"""Rate limits per write key: token buckets counted in events, with an injectable clock.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second.
A request of ``n`` events is admitted when the bucket holds ``n`` tokens (or is
full, for a batch larger than the burst), and is then charged all ``n``: the
balance may go below zero, and later requests wait until it is repaid. A refused
request learns how long to wait (the collector's ``Retry-After``).

>>> clock = iter([0.0, 0.0, 0.5]).__next__
>>> limiter = RateLimiter(rate=10, burst=10, clock=clock)
>>> limiter.admit("web", 10), limiter.admit("web", 1), limiter.admit("web", 5)
(0.0, 0.1, 0.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Buckets kept before full ones (as good as new) are dropped.
MAX_BUCKETS = 10_000
#: Tokens short of a request that count as enough (floating-point refill sums).
EPSILON = 1e-9


class TokenBucket:
    """One key's bucket: ``tokens`` at time ``at`` (seconds of the limiter's clock)."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
            self.at = now

    def take(self, cost: int, now: float) -> float:
        """Charge ``cost`` tokens and return 0.0, or return the seconds to wait before it would be admitted."""
        self._refill(now)
        needed = min(cost, self.burst)
        if self.tokens >= needed - EPSILON:
            self.tokens -= cost
            return 0.0
        return (needed - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled completely (so forgetting it changes nothing)."""
        self._refill(now)
        return self.tokens >= self.burst


class RateLimiter:
    """Token buckets by key id, all with the same ``rate`` (events/s) and ``burst``; ``rate`` 0 admits everything."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def admit(self, ident: str, cost: int) -> float:
        """Charge ``cost`` events to ``ident``'s bucket: 0.0 when admitted, else the seconds to wait."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        bucket = self.buckets.get(ident)
        if bucket is None:
            if len(self.buckets) >= MAX_BUCKETS:
                self._prune(now)
            bucket = self.buckets[ident] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(cost, now)

    def _prune(self, now: float) -> None:
        for ident in [i for i, b in self.buckets.items() if b.full(now)]:
            del self.buckets[ident]
