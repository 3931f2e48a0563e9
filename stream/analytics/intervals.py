"""Confidence intervals for comparing a treatment arm with a holdout (control) arm; pure functions.

* :func:`wilson` — the Wilson score interval of one proportion (good at small n and rates near 0 or 1).
* :func:`newcombe` — Newcombe's hybrid score interval (his method 10) of a difference of two
  proportions, built from the two Wilson intervals.
* :func:`welch` — Welch's t interval of a difference of two means (unequal variances), for
  revenue per member.

>>> [round(x, 4) for x in newcombe(56, 70, 48, 80)]     # Newcombe (1998), example (a)
[0.0524, 0.3339]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, variance

Interval = tuple[float, float]


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile of ``confidence`` (1.959964 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval of ``successes / n``; ``None`` when ``n`` is 0.

    >>> [round(x, 4) for x in wilson(81, 263)]
    [0.2553, 0.3662]
    """
    if n == 0:
        return None
    z = z_value(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> Interval | None:
    """Newcombe's hybrid score interval of ``x1/n1 - x2/n2``; ``None`` when an arm is empty."""
    first, second = wilson(x1, n1, confidence), wilson(x2, n2, confidence)
    if first is None or second is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = first, second
    difference = p1 - p2
    return (
        difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def welch(first: Sequence[float], second: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """Welch's t interval of ``mean(first) - mean(second)``; ``None`` with fewer than 2 values in an arm.

    When both arms have no variance at all the interval is the difference itself.
    """
    if len(first) < 2 or len(second) < 2:
        return None
    from scipy.stats import t  # scipy comes with river

    difference = fmean(first) - fmean(second)
    a, b = variance(first) / len(first), variance(second) / len(second)
    if a + b == 0:
        return difference, difference
    freedom = (a + b) ** 2 / (a * a / (len(first) - 1) + b * b / (len(second) - 1))
    half = float(t.ppf(0.5 + confidence / 2, freedom)) * math.sqrt(a + b)
    return difference - half, difference + half
