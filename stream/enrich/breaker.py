"""A circuit breaker: stop calling a failing service for a while, then probe it once.

Closed: calls go through; ``failures`` consecutive failures open it. Open: no call
goes through for ``cooldown_s``. Then half-open: one probe call goes through; its
success closes the breaker, its failure opens it again for another cooldown.

>>> now = [0.0]
>>> breaker = CircuitBreaker(failures=2, cooldown_s=10, clock=lambda: now[0])
>>> breaker.failure(); breaker.failure(); breaker.state, breaker.allow()
('open', False)
>>> now[0] = 10; breaker.allow(), breaker.state, breaker.allow()
(True, 'half_open', False)
>>> breaker.success(); breaker.state
'closed'
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures, for ``cooldown_s`` seconds of ``clock``."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.state = CLOSED
        self.consecutive = 0
        self.opens = 0
        self._opened_at = 0.0

    def allow(self) -> bool:
        """Whether a call may go now; after the cooldown the first caller gets the one half-open probe."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            self.state = HALF_OPEN
            return True
        return False

    def success(self) -> None:
        """A call succeeded: close."""
        self.state = CLOSED
        self.consecutive = 0

    def failure(self) -> None:
        """A call failed or timed out: count it, and open at the threshold (at once when half-open)."""
        self.consecutive += 1
        if self.state == HALF_OPEN or self.consecutive >= self.threshold:
            self.state = OPEN
            self.opens += 1
            self._opened_at = self._clock()
