"""Ranking quality of recommendations on held-out next purchases: precision@k, MAP@k, hit rate@k.

The trainer evaluates progressively: before it learns a purchase, it ranks the
catalogue for the customer exactly as the API would serve it (items the customer
already bought left out) and compares the top ``k`` with the products bought
(``relevant``). With ``top`` the first ``k`` recommended items:

* **precision@k** = ``|top ∩ relevant| / k``;
* **AP@k** = ``(1 / min(k, |relevant|)) · Σ_{i ≤ k, top[i] relevant} precision@i``
  (1.0 when every bought product is ranked first, lower the further down they are);
* **hit@k** = 1 when at least one bought product is in ``top``.

MAP@k, precision@k and hit rate@k are their means over the purchases evaluated.
With one product per order precision@k is at most ``1/k``; hit rate and MAP read
more naturally then.

>>> precision_at_k(["a", "b", "c"], {"b", "z"}, 3)
0.3333333333333333
>>> average_precision_at_k(["a", "b", "c"], {"b", "c"}, 3)  # (1/2 + 2/3) / 2
0.5833333333333333
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any


def precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the first ``k`` of ``ranked`` that are relevant (missing places count as misses)."""
    return sum(1 for item in ranked[:k] if item in relevant) / k


def average_precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """AP@k: the precision at each relevant place of the first ``k``, summed, over ``min(k, |relevant|)``; 0.0 without relevant items."""
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for place, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / place
    return total / min(k, len(relevant))


class RankingQuality:
    """Running precision@k, MAP@k and hit rate@k over the purchases evaluated."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.n = 0
        self.precision = 0.0
        self.average_precision = 0.0
        self.hits = 0

    def update(self, ranked: Sequence[str], relevant: Collection[str]) -> None:
        """Count one purchase of ``relevant`` products that were ranked ``ranked`` just before."""
        self.n += 1
        self.precision += precision_at_k(ranked, relevant, self.k)
        self.average_precision += average_precision_at_k(ranked, relevant, self.k)
        self.hits += any(item in relevant for item in ranked[: self.k])

    def report(self) -> dict[str, Any]:
        """JSON-ready means (``None`` before the first purchase)."""
        n = self.n
        return {
            "precision_at_k": self.precision / n if n else None,
            "map_at_k": self.average_precision / n if n else None,
            "hit_rate_at_k": self.hits / n if n else None,
        }
