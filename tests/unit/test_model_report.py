"""The report as text and as Prometheus lines carries the learner's figures."""

from __future__ import annotations

import json
import random

from stream.models.config import ClusterSpec, ModelsConfig, ModelSpec
from stream.models.learner import Learner
from stream.models.records import OBSERVATION, TrainingRecord
from stream.models.report import format_report, metrics_lines
from stream.models.features import CLUSTER_FEATURES
from stream.models.words import WORDS, describe


def report() -> dict:
    """A JSON round-tripped report of a learner that saw every kind of record."""
    rng = random.Random(1)
    config = ModelsConfig(min_examples=20, clusters=ClusterSpec(k=2), purchase_propensity=ModelSpec(enabled=False, horizon="14d"))
    learner = Learner(config, {"churn": [0.7]}, {"at_risk": {"churn"}})
    for i in range(200):
        x = {"recency_days": rng.uniform(0, 30), "has_purchased": 1.0, "days_since_purchase": rng.uniform(0, 90), "purchases": 1.0, "revenue": 4.0}
        segments = ("at_risk",) if x["recency_days"] > 20 else ("vip",)
        learner.learn(TrainingRecord(f"c{i}", OBSERVATION, i, x))
        learner.learn(TrainingRecord(f"c{i}", "churn", i, x, y=float(x["recency_days"] > 15), segments=segments))
        learner.learn(TrainingRecord(f"c{i}", "ltv", i, x, y=x["recency_days"] * 3, segments=segments))
    learner.learn(TrainingRecord("c0", OBSERVATION, 0, {}))
    return json.loads(json.dumps(learner.report()))


def test_format_report_shows_every_figure() -> None:
    r = report()
    text = format_report(r)
    churn, ltv = r["churn"], r["ltv"]
    assert "churn: 200 examples" in text and f"ROC-AUC {churn['roc_auc']:.3f}" in text and f"log loss {churn['log_loss']:.3f}" in text
    for row in churn["thresholds"]:
        assert f"at threshold {row['threshold']:g}: precision {row['precision']:.3f}   recall {row['recall']:.3f}" in text
        assert f"{row['tp']:>9}{row['fp']:>9}" in text and f"{row['fn']:>9}{row['tn']:>9}" in text
    assert f"MAE {ltv['mae']:.3f}   RMSE {ltv['rmse']:.3f}   R2 {ltv['r2']:.3f}" in text
    assert "at_risk *" in text and "vip " in text  # at_risk reads churn
    assert "purchase_propensity" not in text  # disabled
    for row in r["clusters"]["clusters"]:
        assert f"{row['id']}: {row['description']} ({row['size']} observations)" in text
    assert "RFM cut points (20/40/60/80 %) among 200 purchasers' observations" in text
    assert "1 duplicates ignored" in text


def test_format_report_of_a_fresh_learner() -> None:
    text = format_report(Learner(ModelsConfig(), {}, {}).report())
    assert "churn: 0 examples" in text and "not scoring yet (needs 50 examples)" in text and "no purchaser" in text
    assert "ROC-AUC -   log loss -" in text and "MAE -   RMSE -   R2 -" in text
    assert not any("roc_auc" in line for line in metrics_lines(Learner(ModelsConfig(), {}, {}).report(), "shop"))


def test_metrics_lines_are_prometheus_text() -> None:
    r = report()
    lines = metrics_lines(r, "shop")
    assert f'segstream_model_examples{{model="churn"}} 200' in lines
    assert f'segstream_model_roc_auc{{model="churn"}} {r["churn"]["roc_auc"]!r}' in lines
    assert f'segstream_model_r2{{model="ltv"}} {r["ltv"]["r2"]!r}' in lines
    assert any(line.startswith('segstream_model_precision{model="churn",threshold="0.7"} ') for line in lines)
    assert any(line.startswith('segstream_model_lift{model="churn",segment="at_risk"} ') for line in lines)
    assert "segstream_training_duplicates_total 1" in lines and 'segstream_models_info{namespace="shop"} 1' in lines
    assert "# TYPE segstream_model_roc_auc gauge" in lines and "# TYPE segstream_training_duplicates_total counter" in lines
    names = {line.split("{")[0].split()[0] for line in lines if not line.startswith("#")}
    assert all(f"# HELP {name} " in "\n".join(lines) for name in names)


def test_every_cluster_feature_has_words() -> None:
    assert set(CLUSTER_FEATURES) <= set(WORDS)
    assert describe({"purchases": 2.0, "aov": -1.0, "discount_share": 0.7, "views_30d": 0.6}) == "frequent, low basket, price-sensitive"
    assert describe({"days_since_purchase": -0.49}) == "average"
