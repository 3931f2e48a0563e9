"""Backtest on a synthetic history with a known signal: the whole pipeline (features, delayed
labels, progressive validation) must rank customers well above chance."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.models.backtest import backtest
from stream.models.report import format_report
from stream.models.synthetic import history
from stream.rules import RuleError, load_rules

RULES = """
segments:
  - name: high_propensity
    condition: {score: purchase_propensity, gt: 0.6}
  - name: at_risk
    condition: {score: churn, gt: 0.5}
models:
  min_examples: 50
  churn: {horizon: 14d}
  purchase_propensity: {horizon: 7d}
  ltv: {horizon: 14d}
  clusters: {k: 3}
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(RULES)
    return backtest(history(300, 60, seed=11), load_rules(path), 1000).summary()


def test_churn_roc_auc_clears_0_75_and_propensity_0_8_on_the_synthetic_signal(result: dict) -> None:
    report = result["report"]
    assert report["churn"]["examples"] > 1000 and 0 < report["churn"]["positive_rate"] < 0.5
    assert report["churn"]["roc_auc"] >= 0.75
    assert report["purchase_propensity"]["roc_auc"] >= 0.8
    assert report["ltv"]["examples"] > 100 and report["ltv"]["mae"] is not None


def test_segment_membership_predicts_the_outcome_lift_above_1(result: dict) -> None:
    lift = {row["segment"]: row for row in result["report"]["purchase_propensity"]["lift"]}
    assert lift["high_propensity"]["lift"] > 1.2 and lift["high_propensity"]["reads"]
    table = {row["threshold"]: row for row in result["report"]["purchase_propensity"]["thresholds"]}
    counts = table[0.6]
    assert counts["tp"] + counts["fp"] + counts["tn"] + counts["fn"] == result["report"]["purchase_propensity"]["examples"]


def test_report_counts_censored_examples_and_prints(result: dict) -> None:
    assert sum(result["censored_examples"].values()) > 0  # windows reaching past the end of the history
    assert result["training_records"]["observation"] > 0
    text = format_report(result["report"])
    assert "ROC-AUC" in text and "high_propensity" in text


def test_rules_without_models_are_refused(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("segments:\n  - {name: a, condition: {event: A, within: 1d}}\n")
    with pytest.raises(RuleError, match="models:"):
        backtest([], load_rules(tmp_path), 1000)
