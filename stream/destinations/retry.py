"""The retry policy: what an HTTP answer means, and how long to wait before the next attempt.

Exponential backoff with jitter, capped: attempt ``n`` (1 = the first retry) waits
``min(max_s, initial_s * factor ** (n - 1))``, minus up to ``jitter`` of it at random,
so receivers recovering from an outage are not hit by every sender at once.

>>> spec = BackoffSpec(initial_s=1, factor=2, max_s=10, jitter=0)
>>> [delay(spec, n) for n in range(1, 6)]
[1.0, 2.0, 4.0, 8.0, 10.0]
>>> outcome(503), outcome(429), outcome(404), outcome(204)
('retry', 'retry', 'permanent', 'delivered')
"""

from __future__ import annotations

import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Literal

from pydantic import Field

from stream.rules.model import RuleModel

Outcome = Literal["delivered", "retry", "permanent"]
#: 4xx answers that mean "try again later" rather than "this request is wrong".
RETRYABLE_4XX = frozenset({408, 429})


class BackoffSpec(RuleModel):
    """``initial_s`` before the first retry, multiplied by ``factor`` each time, at most ``max_s``, less up to ``jitter`` (a fraction) at random."""

    initial_s: float = Field(1.0, gt=0)
    factor: float = Field(2.0, ge=1)
    max_s: float = Field(60.0, gt=0)
    jitter: float = Field(0.5, ge=0, le=1)


def delay(spec: BackoffSpec, retry: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``retry`` (1 = after the first failed attempt)."""
    nominal = min(spec.max_s, spec.initial_s * spec.factor ** (retry - 1))
    return nominal * (1 - spec.jitter * rand())


def outcome(status: int) -> Outcome:
    """What an answer's status means: 2xx delivered; 5xx, 408 and 429 retry; any other 4xx (or 1xx/3xx) permanent."""
    if 200 <= status < 300:
        return "delivered"
    if status >= 500 or status in RETRYABLE_4XX:
        return "retry"
    return "permanent"


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta seconds or an HTTP date), ``None`` when absent or unreadable.

    >>> retry_after("3", now=0), retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4), retry_after("soon", now=0)
    (3.0, 6.0, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def wait_before(spec: BackoffSpec, retry: int, asked_s: float | None, rand: Callable[[], float] = random.random) -> float:
    """The wait before retry ``retry``: the backoff, or the receiver's ``Retry-After`` when longer (honoured up to ``max_s``)."""
    backoff = delay(spec, retry, rand)
    return backoff if asked_s is None else max(backoff, min(asked_s, spec.max_s))
