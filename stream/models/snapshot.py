"""What workers score with: a versioned, picklable bundle of the ready models, RFM cut points and clusters.

The trainer takes a :class:`Snapshot` from its :class:`~stream.models.learner.Learner`
and stores it in Redis (pickle); workers call :meth:`Snapshot.score` on every event.
A part is in the snapshot only once it learned ``models.min_examples`` records
(examples for a model, purchasers' observations for RFM, observations for clusters),
and each score carries that count as its model version ``"m"``.

RFM scores rank a customer's raw values against the quintile cut points (20/40/60/80 %)
of purchasers: frequency and monetary score ``1 + number of cut points strictly below
the value``; recency is reversed (``5 - cut points strictly below the days since the
last purchase``), so 5 is always best. Recency drifts with time alone, so scoring also
says when it next changes.

>>> cuts = RfmCuts(recency_ms=(1e3, 2e3, 3e3, 4e3), frequency=(1, 2, 3, 4), monetary=(10, 20, 30, 40), version=9)
>>> cuts.score(Rfm(last_purchase=0, frequency=3, monetary=100.0), now=1_500)
((4, 3, 5), 2001)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.models.config import CLASSIFIERS, DAY_MS
from stream.models.features import CLUSTER_FEATURES
from stream.models.reco import Recommender
from stream.models.records import Rfm

#: The quantiles whose values cut RFM values into five scores.
RFM_QUANTILES = (0.2, 0.4, 0.6, 0.8)


def predict(kind: str, model: Any, x: dict[str, float]) -> float:
    """The score of a river model of ``kind`` for ``x``: probability of class 1 (classifiers) or revenue >= 0 (``ltv``)."""
    if kind in CLASSIFIERS:
        return model.predict_proba_one(x).get(True, 0.0)
    return max(model.predict_one(x), 0.0)


def cluster_vector(x: dict[str, float]) -> dict[str, float]:
    """The features clusters are learned on (:data:`~stream.models.features.CLUSTER_FEATURES`), 0.0 when missing."""
    return {name: x.get(name, 0.0) for name in CLUSTER_FEATURES}


def rank(value: float, cuts: Sequence[float]) -> int:
    """1 + the number of ascending ``cuts`` strictly below ``value`` (1-5 with four cuts)."""
    return 1 + bisect_left(cuts, value)


@dataclass(frozen=True, slots=True)
class RfmCuts:
    """Ascending quintile cut points of purchasers' recency (ms since the last purchase), frequency and monetary value."""

    recency_ms: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]
    version: int

    def score(self, rfm: Rfm, now: int) -> tuple[tuple[int, int, int], int | None]:
        """(recency, frequency, monetary) scores, 5 best, and when (ms > ``now``) the recency score next changes, if ever."""
        elapsed = now - rfm.last_purchase
        below = bisect_left(self.recency_ms, elapsed)
        change = math.floor(rfm.last_purchase + self.recency_ms[below]) + 1 if below < len(self.recency_ms) else None
        return (len(self.recency_ms) + 1 - below, rank(rfm.frequency, self.frequency), rank(rfm.monetary, self.monetary)), change

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the version (purchasers' observations learned) and the cut points (days, purchases, revenue)."""
        return {
            "version": self.version,
            "quantiles": list(RFM_QUANTILES),
            "recency_days": [c / DAY_MS for c in self.recency_ms],
            "frequency": list(self.frequency),
            "monetary": list(self.monetary),
        }


@dataclass(frozen=True, slots=True)
class Clusters:
    """Behavioural clusters: the running scaler, the k-means model (centroids in standardized units) and their words."""

    scaler: Any
    model: Any
    descriptions: tuple[str, ...]
    version: int

    def assign(self, x: dict[str, float]) -> int:
        """The id of the cluster nearest to ``x``."""
        return self.model.predict_one(self.scaler.transform_one(cluster_vector(x)))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Version ``version`` of the scoring models: per kind (river model, examples learned); RFM cuts; clusters; recommender."""

    version: int
    models: dict[str, tuple[Any, int]]
    rfm: RfmCuts | None = None
    clusters: Clusters | None = None
    #: The population's median of each trait imputed by median (see ``ModelsConfig.imputation``).
    medians: dict[str, float] = field(default_factory=dict)
    #: Product recommendations (see :mod:`stream.models.reco`), once ``min_examples`` interactions were learned.
    recommender: Recommender | None = None

    def score(self, x: dict[str, float], rfm: Rfm | None, now: int) -> tuple[dict[str, dict[str, Any]], int | None]:
        """name -> {"v": value, "m": model version} for every score ready (churn and purchase_propensity: probability of class 1; ltv: predicted revenue >= 0; rfm_recency/rfm_frequency/rfm_monetary: 1-5 where 5 is best (most recent, most frequent, highest monetary), rfm: the three digits as text "545"; cluster: int id), and the next time (ms > now) the rfm_recency score changes (when now - last_purchase crosses the next recency cut point), else None."""
        scores = {kind: {"v": predict(kind, model, x), "m": version} for kind, (model, version) in self.models.items()}
        change = None
        if self.rfm is not None and rfm is not None:
            (r, f, m), change = self.rfm.score(rfm, now)
            v = self.rfm.version
            scores["rfm_recency"] = {"v": r, "m": v}
            scores["rfm_frequency"] = {"v": f, "m": v}
            scores["rfm_monetary"] = {"v": m, "m": v}
            scores["rfm"] = {"v": f"{r}{f}{m}", "m": v}
        if self.clusters is not None:
            scores["cluster"] = {"v": self.clusters.assign(x), "m": self.clusters.version}
        return scores, change

    def describe(self) -> dict[str, Any]:
        """JSON-ready: this snapshot's version, each model's version, the RFM cut points and the cluster descriptions."""
        return {
            "version": self.version,
            "models": {kind: {"version": version} for kind, (_, version) in self.models.items()},
            "rfm": self.rfm.describe() if self.rfm is not None else None,
            "clusters": (
                {"version": self.clusters.version, "descriptions": list(self.clusters.descriptions)} if self.clusters is not None else None
            ),
            "recommendations": (
                {"version": self.recommender.version, "items": len(self.recommender.items), "customers": len(self.recommender.customers)}
                if self.recommender is not None
                else None
            ),
        }
