"""The trainer's state: river models learning with progressive validation, RFM quantiles, online k-means.

:meth:`Learner.learn` takes the training topic's records in order:

* an **observation** updates the behavioural clusters (a running standard scaler over
  :data:`~stream.models.features.CLUSTER_FEATURES`, then river's incremental k-means on
  the scaled vector; river keeps a centre's index while it drifts, so cluster ids are
  stable) and, for a purchaser (feature ``has_purchased`` = 1), the RFM quantile
  sketches (river's P² ``stats.Quantile`` at 20/40/60/80 %) of recency
  (``days_since_purchase``), frequency (``expm1(purchases)``) and monetary value
  (``expm1(revenue)``): the raw units :meth:`Snapshot.score` compares with;
* a labelled **example** of a model kind is first scored by the model as it is
  (progressive validation: every example is unseen when scored), the quality
  metrics and the lift table are updated, then the model learns it;
* an **interaction** goes to the recommender (:mod:`stream.models.reco_learner`),
  which evaluates a purchase before learning it.

Quality kept per kind: classifiers (positive: ``y >= 0.5``) ROC-AUC (river's
approximation over 101 thresholds), log loss, accuracy at 0.5, positive rate, and at
each threshold rules compare the score with (plus 0.5; predicted positive: score
``>=`` threshold) the confusion counts with precision and recall; ``ltv`` MAE, RMSE
and R² in revenue units. Lift per segment: among examples whose customer was in the
segment at sampling time, the outcome rate (mean revenue for ``ltv``) over the
overall one.

A record whose id is among the last :data:`RECENT_IDS` ids learned (a worker
republished it after a crash) is counted as a duplicate and not learned again.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import Any

from river import cluster, linear_model, metrics, optim, preprocessing, stats, tree

from stream.models.config import CLASSIFIERS, DAY_MS, ModelsConfig
from stream.models.features import CLUSTER_FEATURES
from stream.models.reco_learner import RecoLearner
from stream.models.records import INTERACTION, OBSERVATION, TrainingRecord
from stream.models.snapshot import RFM_QUANTILES, Clusters, RfmCuts, Snapshot, cluster_vector, predict
from stream.models.words import describe

#: How many recent record ids the duplicate check remembers (see :class:`RecentIds`).
RECENT_IDS = 200_000
#: Thresholds of river's ROC-AUC approximation (its resolution).
ROC_THRESHOLDS = 101
#: Learning rate of the classifiers' SGD (features are scaled first).
LEARNING_RATE = 0.05
#: How far a k-means centre moves towards each observation it wins (river's ``halflife``).
CLUSTER_HALFLIFE = 0.05
CLUSTER_SEED = 42
#: Examples a leaf of the LTV tree sees between split attempts.
LTV_GRACE_PERIOD = 50
def new_model(kind: str) -> Any:
    """A fresh river model for ``kind``: scaled logistic regression, or for ``ltv`` a scaled Hoeffding tree regressor.

    The tree (linear models in its leaves) fits LTV's zero-inflated, multiplicative revenue
    better than a linear regression on raw or log revenue (R² 0.39-0.44 vs 0.13-0.35 on a
    simulated population where most customers buy nothing within the horizon).
    """
    if kind in CLASSIFIERS:
        return preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optim.SGD(LEARNING_RATE), intercept_lr=LEARNING_RATE, l2=1e-4
        )
    return preprocessing.StandardScaler() | tree.HoeffdingTreeRegressor(grace_period=LTV_GRACE_PERIOD)


class RecentIds:
    """The last ``bound`` record ids (UUIDs) added, oldest forgotten first.

    Each is kept as its first 64 bits (a collision among 200 000 ids has odds ~1e-8):
    about 2.3 MB of pickled trainer state at 200 000 ids, against 8 MB as text.
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._ids: OrderedDict[int, None] = OrderedDict()

    def add(self, id: str) -> bool:
        """Remember ``id``; ``False`` when it was already remembered."""
        key = int(id.replace("-", "")[:16], 16)
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.bound:
            self._ids.popitem(last=False)
        return True


class Lift:
    """Outcome count and sum overall and per segment the customers were in at sampling time."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.segments: dict[str, list[float]] = {}  # name -> [n, sum of outcomes]

    def update(self, y: float, segments: Iterable[str]) -> None:
        """Count outcome ``y`` overall and in each of ``segments``."""
        self.n += 1
        self.total += y
        for name in segments:
            counts = self.segments.setdefault(name, [0, 0.0])
            counts[0] += 1
            counts[1] += y

    def table(self, kind: str, score_segments: Mapping[str, set[str]]) -> list[dict[str, Any]]:
        """Per segment, largest first: n, outcome rate, lift over the overall rate, and whether it reads score ``kind``."""
        overall = self.total / self.n if self.n else 0.0
        rows = []
        for name, (n, total) in self.segments.items():
            rate = total / n
            lift = rate / overall if overall else None
            rows.append({"segment": name, "n": int(n), "rate": rate, "lift": lift, "reads": kind in score_segments.get(name, ())})
        return sorted(rows, key=lambda row: (-row["n"], row["segment"]))


class Track:
    """One model kind learned with progressive validation: score the example, update quality, then learn it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.model = new_model(kind)
        self.examples = 0
        self.lift = Lift()

    def learn(self, x: dict[str, float], y: float, segments: Iterable[str]) -> None:
        """Validate on, then learn, the example ``(x, y)`` of a customer in ``segments``."""
        self.evaluate(y, predict(self.kind, self.model, x))
        self.model.learn_one(x, self.target(y))
        self.lift.update(y, segments)
        self.examples += 1

    def target(self, y: float) -> Any:
        """The label the river model learns."""
        return y

    def evaluate(self, y: float, score: float) -> None:
        """Update the quality metrics with the label ``y`` of an example scored ``score`` before learning it."""
        raise NotImplementedError

    def quality(self) -> dict[str, Any]:
        """JSON-ready quality metrics."""
        raise NotImplementedError


class ClassifierTrack(Track):
    """A classifier's track: ROC-AUC, log loss, accuracy, and confusion counts at each threshold."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.roc_auc = metrics.ROCAUC(n_thresholds=ROC_THRESHOLDS)
        self.log_loss = metrics.LogLoss()
        self.accuracy = metrics.Accuracy()
        self.confusion: dict[float, list[int]] = {0.5: [0, 0, 0, 0]}  # threshold -> [tp, fp, tn, fn]

    def use_thresholds(self, thresholds: Iterable[float]) -> None:
        """Count confusion at ``thresholds`` and 0.5 from now on (kept thresholds keep their counts)."""
        wanted = {0.5, *thresholds}
        self.confusion = {t: self.confusion.get(t, [0, 0, 0, 0]) for t in sorted(wanted)}

    def target(self, y: float) -> bool:
        return y >= 0.5

    def evaluate(self, y: float, score: float) -> None:
        positive = y >= 0.5
        self.roc_auc.update(positive, score)
        self.log_loss.update(positive, score)
        self.accuracy.update(positive, score >= 0.5)
        for threshold, counts in self.confusion.items():
            predicted = score >= threshold
            counts[(not predicted) * 2 + (predicted != positive)] += 1  # tp, fp, tn, fn

    def quality(self) -> dict[str, Any]:
        seen = self.lift.n > 0
        both = 0 < self.lift.total < self.lift.n  # ROC-AUC needs both labels
        return {
            "positive_rate": self.lift.total / self.lift.n if seen else None,
            "roc_auc": float(self.roc_auc.get()) if both else None,  # numpy from scipy
            "log_loss": self.log_loss.get() if seen else None,
            "accuracy": self.accuracy.get() if seen else None,
            "thresholds": [_threshold_row(t, *counts) for t, counts in self.confusion.items()],
        }


class RegressorTrack(Track):
    """The LTV regression's track: MAE, RMSE and R² in revenue units."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.mae = metrics.MAE()
        self.rmse = metrics.RMSE()
        self.r2 = metrics.R2()

    def evaluate(self, y: float, score: float) -> None:
        for metric in (self.mae, self.rmse, self.r2):
            metric.update(y, score)

    def quality(self) -> dict[str, Any]:
        if not self.lift.n:
            return {"mean": None, "mae": None, "rmse": None, "r2": None}
        return {"mean": self.lift.total / self.lift.n, "mae": self.mae.get(), "rmse": self.rmse.get(), "r2": self.r2.get()}


def _threshold_row(threshold: float, tp: int, fp: int, tn: int, fn: int) -> dict[str, Any]:
    return {
        "threshold": threshold,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


class RfmSketch:
    """Streaming quintiles of purchasers' recency (days), frequency (purchases) and monetary value (revenue)."""

    def __init__(self) -> None:
        self.n = 0
        self.sketches = [[stats.Quantile(q) for q in RFM_QUANTILES] for _ in range(3)]

    def update(self, x: dict[str, float]) -> None:
        """Learn the RFM values of the observation ``x`` if the customer purchased."""
        if x.get("has_purchased", 0.0) < 0.5:
            return
        self.n += 1
        values = (x.get("days_since_purchase", 0.0), math.expm1(x.get("purchases", 0.0)), math.expm1(x.get("revenue", 0.0)))
        for sketch, value in zip(self.sketches, values):
            for quantile in sketch:
                quantile.update(value)

    def cuts(self) -> RfmCuts:
        """The current cut points (made non-decreasing: each quintile is estimated on its own)."""
        recency, frequency, monetary = (tuple(accumulate((q.get() for q in sketch), max)) for sketch in self.sketches)
        return RfmCuts(tuple(days * DAY_MS for days in recency), frequency, monetary, self.n)


class ClusterLearner:
    """Online k-means over the standardized cluster features, with the size of each cluster as learned."""

    def __init__(self, k: int) -> None:
        self.scaler = preprocessing.StandardScaler()
        self.model = cluster.KMeans(n_clusters=k, halflife=CLUSTER_HALFLIFE, seed=CLUSTER_SEED)
        # river draws a centre's coordinates lazily, in the order a distance visits the
        # features (set order, which varies with PYTHONHASHSEED); draw them in a fixed order.
        for centre in self.model.centers.values():
            for name in CLUSTER_FEATURES:
                centre[name]  # noqa: B018 - the defaultdict draws the coordinate
        self.sizes = [0] * k
        self.n = 0

    def update(self, x: dict[str, float]) -> None:
        """Learn the observation ``x``."""
        v = cluster_vector(x)
        self.scaler.learn_one(v)
        self.sizes[self.model.learn_predict_one(self.scaler.transform_one(v))] += 1
        self.n += 1

    def descriptions(self) -> tuple[str, ...]:
        """Each centroid in words (see :mod:`stream.models.words`), by cluster id; "empty" for a centre nobody reached."""
        return tuple(describe(self.model.centers[i]) if size else "empty" for i, size in enumerate(self.sizes))

    def snapshot(self) -> Clusters:
        """A copy of the scaler and centroids for scoring."""
        return Clusters(copy.deepcopy(self.scaler), copy.deepcopy(self.model), self.descriptions(), self.n)

    def report(self) -> dict[str, Any]:
        """JSON-ready: observations learned and, per cluster, its size, words and centroid (z-scores)."""
        clusters = [
            {"id": i, "size": size, "description": words, "centroid": {name: self.model.centers[i][name] for name in CLUSTER_FEATURES}}
            for i, (size, words) in enumerate(zip(self.sizes, self.descriptions()))
        ]
        return {"observations": self.n, "clusters": clusters}


class Learner:
    """Everything the trainer learns, from training records in topic order; picklable (the trainer saves it)."""

    def __init__(self, config: ModelsConfig, thresholds: dict[str, list[float]], score_segments: dict[str, set[str]]) -> None:
        self.config = config
        self.tracks: dict[str, Track] = {
            kind: ClassifierTrack(kind) if kind in CLASSIFIERS else RegressorTrack(kind) for kind in config.enabled()
        }
        self.rfm = RfmSketch()
        self.clusters = ClusterLearner(config.clusters.k) if config.clusters.enabled else None
        spec = config.recommender()
        self.reco = RecoLearner(spec) if spec is not None else None
        self.recent = RecentIds(RECENT_IDS)
        self.observations = 0
        self.medians: dict[str, stats.Quantile] = {}  # trait -> its population median (imputation)
        self.median_counts: dict[str, int] = {}  # trait -> observations with a value
        self.duplicates = 0
        self.skipped = 0  # examples of a kind not learned here (disabled) or without a label
        self.score_segments: dict[str, set[str]] = {}
        self.use_rules(thresholds, score_segments)

    def use_rules(self, thresholds: dict[str, list[float]], score_segments: dict[str, set[str]]) -> None:
        """Take the thresholds and score-reading segments of a new rule deployment (``models:`` unchanged)."""
        self.score_segments = score_segments
        for kind, track in self.tracks.items():
            if isinstance(track, ClassifierTrack):
                track.use_thresholds(thresholds.get(kind, []))

    @property
    def examples_learned(self) -> int:
        """Labelled examples learned, all kinds together."""
        return sum(track.examples for track in self.tracks.values())

    def learn(self, record: TrainingRecord) -> None:
        """Learn one record (an observation or a labelled example) unless it was learned already."""
        if not self.recent.add(record.id):
            self.duplicates += 1
        elif record.kind == OBSERVATION:
            self.observations += 1
            for name, value in record.traits.items():
                self.medians.setdefault(name, stats.Quantile(0.5)).update(value)
                self.median_counts[name] = self.median_counts.get(name, 0) + 1
            self.rfm.update(record.x)
            if self.clusters is not None:
                self.clusters.update(record.x)
        elif record.kind in self.tracks and record.y is not None:
            self.tracks[record.kind].learn(record.x, record.y, record.segments)
        elif record.kind == INTERACTION and self.reco is not None and record.items:
            self.reco.learn(record)
        else:
            self.skipped += 1

    def snapshot(self, version: int) -> Snapshot:
        """A scoring snapshot of what is ready (learned ``min_examples``), copied so later learning leaves it alone."""
        ready = self.config.min_examples
        models = {kind: (copy.deepcopy(track.model), track.examples) for kind, track in self.tracks.items() if track.examples >= ready}
        rfm = self.rfm.cuts() if self.rfm.n >= ready else None
        clusters = self.clusters.snapshot() if self.clusters is not None and self.clusters.n >= ready else None
        medians = {name: float(q.get()) for name, q in self.medians.items() if self.median_counts[name] >= ready}
        reco = self.reco
        recommender = reco.recommender(reco.interactions) if reco is not None and reco.interactions >= ready else None
        return Snapshot(version, models, rfm, clusters, medians, recommender)

    def report(self) -> dict[str, Any]:
        """JSON-ready quality report: per kind examples, metrics, thresholds and lift; clusters; RFM cut points; recommendations; counts."""
        ready = self.config.min_examples
        report: dict[str, Any] = {
            kind: {
                "examples": track.examples,
                "scoring": track.examples >= ready,
                **track.quality(),
                "lift": track.lift.table(kind, self.score_segments),
            }
            for kind, track in self.tracks.items()
        }
        report["rfm"] = {**self.rfm.cuts().describe(), "scoring": self.rfm.n >= ready} if self.rfm.n else None
        report["clusters"] = {**self.clusters.report(), "scoring": self.clusters.n >= ready} if self.clusters is not None else None
        report["recommendations"] = (
            {**self.reco.report(), "scoring": self.reco.interactions >= ready} if self.reco is not None else None
        )
        report["medians"] = {name: {"median": q.get(), "observations": self.median_counts[name]} for name, q in sorted(self.medians.items())}
        report.update(min_examples=ready, observations=self.observations, duplicates=self.duplicates, skipped=self.skipped)
        return report
