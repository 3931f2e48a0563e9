"""Token buckets per write key, against a fake clock."""

from __future__ import annotations

import pytest

from stream.auth import ratelimit
from stream.auth.ratelimit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert limiter.admit("web", 20) == 0.0
    assert limiter.admit("web", 1) == pytest.approx(0.1)
    clock.now += 0.5  # 5 tokens back
    assert limiter.admit("web", 5) == 0.0
    assert limiter.admit("web", 3) == pytest.approx(0.3)
    clock.now += 0.3
    assert limiter.admit("web", 3) == 0.0


def test_refill_is_capped_at_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=100, burst=10, clock=clock)
    clock.now += 3600
    assert limiter.admit("web", 10) == 0.0
    assert limiter.admit("web", 1) > 0


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=Clock())
    assert limiter.admit("a", 1) == 0.0 and limiter.admit("b", 1) == 0.0
    assert limiter.admit("a", 1) == pytest.approx(1.0)


def test_a_batch_larger_than_the_burst_passes_a_full_bucket_then_is_repaid() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=10, clock=clock)
    assert limiter.admit("web", 50) == 0.0  # never stuck forever
    assert limiter.admit("web", 1) == pytest.approx(4.1)  # 40 tokens of debt, then 1
    assert limiter.admit("web", 50) == pytest.approx(5.0)  # needs the bucket full again
    clock.now += 5.0
    assert limiter.admit("web", 50) == 0.0


def test_rate_zero_admits_everything() -> None:
    limiter = RateLimiter(rate=0, burst=1, clock=Clock())
    assert not limiter.enabled
    assert all(limiter.admit("web", 10_000) == 0.0 for _ in range(10))
    assert limiter.buckets == {}


def test_full_buckets_are_forgotten_when_there_are_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 3)
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=5, clock=clock)
    for ident in ("a", "b", "c"):
        limiter.admit(ident, 1)
    clock.now += 0.5
    limiter.admit("c", 1)  # c is not full again by the time d arrives
    clock.now += 0.6
    limiter.admit("d", 1)
    assert sorted(limiter.buckets) == ["c", "d"]


def test_token_bucket_full() -> None:
    bucket = TokenBucket(rate=2, burst=4, now=0)
    assert bucket.full(0) and bucket.take(4, 0) == 0.0 and not bucket.full(1.9) and bucket.full(2.0)
