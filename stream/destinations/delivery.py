"""Delivering one request with retries: attempt, classify, back off, until delivered, refused or out of attempts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stream.destinations.http import Answer
from stream.destinations.retry import BackoffSpec, wait_before


@dataclass(frozen=True)
class Delivery:
    """How a request ended: ``delivered``, after how many ``attempts``, with the ``last`` answer."""

    delivered: bool
    attempts: int
    last: Answer

    @property
    def reason(self) -> str:
        """Why it was not delivered: ``rejected`` (a permanent 4xx) or ``attempts_exhausted``."""
        return "rejected" if self.last.outcome == "permanent" else "attempts_exhausted"


async def with_retries(
    attempt: Callable[[], Awaitable[Answer]],
    max_attempts: int,
    backoff: BackoffSpec,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> Delivery:
    """Call ``attempt`` until it is delivered or permanently refused, at most ``max_attempts`` times, backing off in between."""
    n = 1
    while True:
        answer = await attempt()
        if answer.outcome != "retry" or n >= max_attempts:
            return Delivery(answer.outcome == "delivered", n, answer)
        await sleep(wait_before(backoff, n, answer.retry_after_s, rand))
        n += 1
