"""Percentiles of measured times, pure.

Linear interpolation between the closest ranks (numpy's default): the p-th
percentile of ``n`` sorted values sits at rank ``p/100 * (n - 1)``. Values that
never arrived (a change not seen before the timeout) count as infinitely late,
so a percentile that reaches them is ``None``: unknown, not flattering.

>>> percentile([10, 20, 30, 40], 50)
25.0
>>> summary([5.0, 1.0, 3.0], missing=1)
{'count': 3, 'missing': 1, 'p50': 4.0, 'p95': None, 'p99': None, 'max': None}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of ``values``; ``ValueError`` when there are none."""
    if not values:
        raise ValueError("no values to take a percentile of")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    a, b = ordered[low], ordered[high]
    if math.isinf(a) or math.isinf(b):
        return b if rank > low else a
    return a + (b - a) * (rank - low)


def summary(values: Iterable[float], missing: int = 0) -> dict[str, float | int | None]:
    """``count``, ``missing``, ``p50``, ``p95``, ``p99`` and ``max`` of ``values`` plus ``missing`` infinitely late ones."""
    measured = list(values)
    everything = measured + [math.inf] * missing
    out: dict[str, float | int | None] = {"count": len(measured), "missing": missing}
    for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        value = percentile(everything, p) if everything else None
        out[name] = None if value is None or math.isinf(value) else value
    return out
