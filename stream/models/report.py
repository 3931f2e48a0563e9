"""The learner's quality report as text (``segstream models``, ``segstream backtest``) and as Prometheus lines.

Both read the JSON-ready dict of :meth:`stream.models.learner.Learner.report`.
"""

from __future__ import annotations

import math
from typing import Any

from stream.models.config import CLASSIFIERS, KINDS

#: Metric name (after ``segstream_``) -> help text; all gauges but the ``_total`` counters.
METRICS = {
    "model_examples": "Labelled examples the model learned (its model version).",
    "model_scoring": "1 when the model learned enough examples to score customers.",
    "model_roc_auc": "Progressive ROC-AUC (0.5 is chance, 1 perfect).",
    "model_log_loss": "Progressive log loss (lower is better).",
    "model_accuracy": "Progressive accuracy at threshold 0.5.",
    "model_positive_rate": "Share of examples with label 1.",
    "model_precision": "Share of customers scored at or above the threshold whose label was 1.",
    "model_recall": "Share of customers with label 1 scored at or above the threshold.",
    "model_mae": "Progressive mean absolute error of predicted revenue.",
    "model_rmse": "Progressive root mean squared error of predicted revenue.",
    "model_r2": "Progressive R2 of predicted revenue (0 is predicting the mean, 1 perfect).",
    "model_lift": "Outcome rate among customers in the segment at sampling time over the overall rate.",
    "cluster_size": "Observations assigned to the behavioural cluster when learned.",
    "rfm_cut": "RFM quintile cut point among purchasers.",
    "reco_precision_at_k": "Progressive precision@k of recommendations on the next purchase (ranker: model, or popular as baseline).",
    "reco_map_at_k": "Progressive MAP@k of recommendations on the next purchase (ranker: model, or popular as baseline).",
    "reco_hit_rate_at_k": "Share of purchases with a bought product in the top k recommended just before (ranker: model, or popular).",
    "reco_items": "Products in the recommender's catalogue.",
    "reco_scoring": "1 when the recommender learned enough interactions to serve.",
    "reco_interactions_total": "Product interactions (views, adds, purchases) the recommender learned.",
    "reco_purchases_evaluated_total": "Purchases recommendations were evaluated on before learning them.",
    "training_observations_total": "Observations learned (clusters, RFM).",
    "training_duplicates_total": "Training records ignored because their id was already learned.",
    "models_info": "The namespace whose models these metrics describe.",
}


def format_report(report: dict[str, Any]) -> str:
    """The report as text: a block per model, its lift table, the clusters and the RFM cut points."""
    lines: list[str] = []
    for kind in KINDS:
        if kind in report:
            lines += _model_block(kind, report[kind], report.get("min_examples"))
    lines += _clusters_block(report.get("clusters"))
    lines += _rfm_block(report.get("rfm"))
    lines += _reco_block(report.get("recommendations"))
    medians = report.get("medians") or {}
    if medians:
        shown = ", ".join(f"{name} {row['median']:.4g} ({row['observations']} obs.)" for name, row in medians.items())
        lines.append(f"imputation medians: {shown}")
    lines.append(
        f"records: {report.get('observations', 0)} observations, {report.get('duplicates', 0)} duplicates ignored, "
        f"{report.get('skipped', 0)} skipped"
    )
    return "\n".join(lines)


def metrics_lines(report: dict[str, Any], namespace: str) -> list[str]:
    """The report as Prometheus text exposition lines (``segstream_model_roc_auc{model="churn"} 0.81``...)."""
    samples: dict[str, list[tuple[str, Any]]] = {name: [] for name in METRICS}
    for kind in KINDS:
        block = report.get(kind)
        if block is None:
            continue
        model = f'model="{kind}"'
        samples["model_examples"].append((model, block["examples"]))
        samples["model_scoring"].append((model, int(block["scoring"])))
        for key in ("roc_auc", "log_loss", "accuracy", "positive_rate", "mae", "rmse", "r2"):
            if key in block:
                samples[f"model_{key}"].append((model, block[key]))
        for row in block.get("thresholds", []):
            labels = f'{model},threshold="{_num(row["threshold"])}"'
            samples["model_precision"].append((labels, row["precision"]))
            samples["model_recall"].append((labels, row["recall"]))
        for row in block["lift"]:
            samples["model_lift"].append((f'{model},segment="{_escape(row["segment"])}"', row["lift"]))
    clusters = report.get("clusters")
    for row in clusters["clusters"] if clusters else []:
        samples["cluster_size"].append((f'cluster="{row["id"]}"', row["size"]))
    rfm = report.get("rfm")
    for dimension in ("recency_days", "frequency", "monetary") if rfm else ():
        for q, cut in zip(rfm["quantiles"], rfm[dimension]):
            samples["rfm_cut"].append((f'dimension="{dimension}",quantile="{_num(q)}"', cut))
    reco = report.get("recommendations")
    if reco:
        for ranker in ("model", "popular"):
            labels = f'ranker="{ranker}",k="{reco["k"]}"'
            for key in ("precision_at_k", "map_at_k", "hit_rate_at_k"):
                samples[f"reco_{key}"].append((labels, reco[ranker][key]))
        samples["reco_items"].append(("", reco["items"]))
        samples["reco_scoring"].append(("", int(reco["scoring"])))
        samples["reco_interactions_total"].append(("", reco["interactions"]))
        samples["reco_purchases_evaluated_total"].append(("", reco["purchases_evaluated"]))
    samples["training_observations_total"].append(("", report.get("observations", 0)))
    samples["training_duplicates_total"].append(("", report.get("duplicates", 0)))
    samples["models_info"].append((f'namespace="{_escape(namespace)}"', 1))
    lines = []
    for name, rows in samples.items():
        rows = [(labels, value) for labels, value in rows if value is not None]
        if not rows:
            continue
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP segstream_{name} {METRICS[name]}", f"# TYPE segstream_{name} {kind}"]
        lines += [f"segstream_{name}{{{labels}}} {_num(value)}" if labels else f"segstream_{name} {_num(value)}" for labels, value in rows]
    return lines


def _model_block(kind: str, block: dict[str, Any], min_examples: int | None) -> list[str]:
    state = "scoring" if block["scoring"] else f"not scoring yet (needs {min_examples} examples)"
    if kind in CLASSIFIERS:
        lines = [
            f"{kind}: {block['examples']} examples, {_pct(block['positive_rate'])} positive, {state}",
            f"  ROC-AUC {_f(block['roc_auc'])}   log loss {_f(block['log_loss'])}   accuracy {_f(block['accuracy'])}",
        ]
        for row in block["thresholds"]:
            t = f"{row['threshold']:g}"
            lines += [
                f"  at threshold {t}: precision {_f(row['precision'])}   recall {_f(row['recall'])}",
                f"    {'':<12}{'label 1':>9}{'label 0':>9}",
                f"    {'score >= ' + t:<12}{row['tp']:>9}{row['fp']:>9}",
                f"    {'score < ' + t:<12}{row['fn']:>9}{row['tn']:>9}",
            ]
        outcome = "rate"
    else:
        lines = [
            f"{kind}: {block['examples']} examples, mean revenue {_f(block['mean'])}, {state}",
            f"  MAE {_f(block['mae'])}   RMSE {_f(block['rmse'])}   R2 {_f(block['r2'])}",
        ]
        outcome = "mean"
    if block["lift"]:
        lines.append(f"  lift by segment at sampling time (* = the segment reads {kind})")
        lines.append(f"    {'segment':<28} {'n':>7} {outcome:>9} {'lift':>6}")
        lines += [
            f"    {row['segment'] + (' *' if row['reads'] else ''):<28} {row['n']:>7} {_f(row['rate']):>9} {_f(row['lift'], 2):>6}"
            for row in block["lift"]
        ]
    return [*lines, ""]


def _clusters_block(clusters: dict[str, Any] | None) -> list[str]:
    if not clusters:
        return []
    state = "scoring" if clusters["scoring"] else "not scoring yet"
    lines = [f"clusters: {clusters['observations']} observations, {state}"]
    lines += [f"  {row['id']}: {row['description']} ({row['size']} observations)" for row in clusters["clusters"]]
    return [*lines, ""]


def _rfm_block(rfm: dict[str, Any] | None) -> list[str]:
    if not rfm:
        return ["RFM: no purchaser observed yet", ""]
    state = "scoring" if rfm["scoring"] else "not scoring yet"
    quantiles = "/".join(f"{q * 100:.0f}" for q in rfm["quantiles"])
    return [
        f"RFM cut points ({quantiles} %) among {rfm['version']} purchasers' observations, {state}",
        f"  recency days  {' '.join(_f(c, 1) for c in rfm['recency_days'])}",
        f"  frequency     {' '.join(_f(c, 1) for c in rfm['frequency'])}",
        f"  monetary      {' '.join(_f(c, 2) for c in rfm['monetary'])}",
        "",
    ]


def _reco_block(reco: dict[str, Any] | None) -> list[str]:
    if not reco:
        return []
    state = "serving" if reco["scoring"] else "not serving yet"
    k = reco["k"]
    lines = [
        f"recommendations: {reco['interactions']} interactions, {reco['items']} items, {reco['customers']} customers, {state}",
        f"  on {reco['purchases_evaluated']} next purchases, each ranked just before it was learned:",
        f"    {'ranker':<30}{f'precision@{k}':>12}{f'MAP@{k}':>9}{f'hit rate@{k}':>13}",
    ]
    for ranker in ("model", "popular"):
        row = reco[ranker]
        lines.append(f"    {ranker:<30}{_f(row['precision_at_k']):>12}{_f(row['map_at_k']):>9}{_f(row['hit_rate_at_k']):>13}")
    if reco["top_items"]:
        lines.append("  most popular: " + ", ".join(f"{i['product_id']} ({i['category'] or '-'})" for i in reco["top_items"]))
    return [*lines, ""]


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    return repr(value) if isinstance(value, float) else str(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
