"""Recommendations: interactions from events, learning on a synthetic catalogue, serving, quality, and a rule reading them."""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.models.config import DAY_MS, ModelsConfig, RecommendationsSpec
from stream.models.learner import Learner
from stream.models.lifecycle import Modelling
from stream.models.reco import POPULAR, PERSONAL, answer, count, interaction, products
from stream.models.reco_learner import RecoLearner
from stream.models.reco_quality import RankingQuality, average_precision_at_k, precision_at_k
from stream.models.records import INTERACTION, TrainingRecord
from stream.models.report import format_report, metrics_lines
from stream.rules import load_rules
from stream.state.profile import Event, Profile
from stream.worker.step import advance

CONFIG = ModelsConfig.model_validate({"min_examples": 10, "recommendations": {"k": 5}})
PREMIUM = [f"p{i}" for i in range(12)]
BUDGET = [f"b{i}" for i in range(12)]
CATEGORY = {**{p: "premium" for p in PREMIUM}, **{b: "budget" for b in BUDGET}}
WEIGHTS = {"Product Viewed": 1.0, "Product Added": 3.0, "Order Completed": 5.0}


def track(event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "properties": props}


def group_of(customer: str) -> list[str]:
    """Even customers prefer premium products, odd ones budget products."""
    return PREMIUM if int(customer[1:]) % 2 == 0 else BUDGET


def shop(learner: Learner | RecoLearner, customers: int = 60, events: int = 3000, seed: int = 7) -> None:
    """Interactions where each customer mostly (90 %) views, adds and buys products of its group's category."""
    rng = random.Random(seed)
    for ts in range(events):
        customer = f"c{rng.randrange(customers)}"
        item = rng.choice(group_of(customer) if rng.random() < 0.9 else PREMIUM + BUDGET)
        event = rng.choices(list(WEIGHTS), weights=[70, 20, 10])[0]
        record = track(event, product_id=item, category=CATEGORY[item])
        learner.learn(*interaction(customer, record, ts, CONFIG))


def test_products_come_from_product_id_and_the_products_list() -> None:
    props = {"product_id": "p1", "category": "premium", "products": [{"product_id": "p2", "category": 3}, {"product_id": "p1"}, "junk", {"sku": "x"}]}
    assert products(props) == (("p1", "premium"), ("p2", "3"))
    assert products({"products": 5, "product_id": True}) == ()


def test_an_interaction_carries_its_weight_products_and_purchase_flag() -> None:
    (view,) = interaction("u", track("Product Viewed", product_id="p1", category="premium"), 1000, CONFIG)
    assert (view.kind, view.y, view.x, view.items) == (INTERACTION, 1.0, {"purchase": 0.0}, (("p1", "premium"),))
    (order,) = interaction("u", track("Order Completed", products=[{"product_id": "p1"}, {"product_id": "p2"}]), 1000, CONFIG)
    assert (order.y, order.x["purchase"], order.items) == (5.0, 1.0, (("p1", None), ("p2", None)))
    assert TrainingRecord.from_bytes(order.to_bytes()) == order
    assert view.id != order.id and view.field != order.field  # same customer and ms, different products
    assert interaction("u", track("Email Opened", product_id="p1"), 1000, CONFIG) == []  # not a weighted event
    assert interaction("u", track("Product Viewed"), 1000, CONFIG) == []  # no product
    assert interaction("u", track("Product Viewed", product_id="p1"), 1000, ModelsConfig()) == []  # recommendations off


def test_precision_and_map_at_k_on_a_hand_example() -> None:
    ranked = ["a", "b", "c", "d"]
    assert precision_at_k(ranked, {"b", "d"}, 2) == 0.5
    assert precision_at_k(ranked, {"z"}, 3) == 0.0
    assert precision_at_k(["a"], {"a"}, 4) == 0.25  # a short ranking still divides by k
    assert average_precision_at_k(ranked, {"b", "d"}, 4) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert average_precision_at_k(ranked, {"a"}, 3) == 1.0
    assert average_precision_at_k(ranked, {"d", "x", "y"}, 2) == 0.0
    quality = RankingQuality(2)
    quality.update(ranked, {"a"})  # p@2 0.5, AP 1, hit
    quality.update(ranked, {"c"})  # p@2 0, AP 0, miss
    assert quality.report() == {"precision_at_k": 0.25, "map_at_k": 0.5, "hit_rate_at_k": 0.5}


def test_recommendations_follow_the_customers_group_and_beat_popularity() -> None:
    learner = Learner(CONFIG, {}, {})
    shop(learner)
    recommender = learner.snapshot(1).recommender
    assert recommender is not None and recommender.version == 3000
    for customer in ("c0", "c2", "c1", "c3"):
        ranked = recommender.rank(customer, 5)
        assert ranked.source == PERSONAL
        in_group = sum(item in group_of(customer) for item, _, _ in ranked.items)
        assert in_group >= 4, (customer, ranked.items)
    report = learner.report()["recommendations"]
    assert report["purchases_evaluated"] > 200 and report["scoring"]
    model, popular = report["model"], report["popular"]
    assert model["hit_rate_at_k"] > popular["hit_rate_at_k"] + 0.1, report
    assert model["map_at_k"] > popular["map_at_k"]
    text = format_report(learner.report())
    assert "recommendations: 3000 interactions" in text and "precision@5" in text
    lines = metrics_lines(learner.report(), "ns")
    assert any(line.startswith('segstream_reco_map_at_k{ranker="model",k="5"} ') for line in lines)
    assert "segstream_reco_interactions_total 3000" in lines
    assert orjson.loads(orjson.dumps(learner.report()))["recommendations"]["k"] == 5  # plain types only
    restored = pickle.loads(pickle.dumps(learner))  # the trainer saves its state as a pickle
    assert restored.reco.interactions == 3000


def test_bought_items_are_never_recommended() -> None:
    learner = Learner(CONFIG, {}, {})
    shop(learner)
    for ts, item in enumerate(PREMIUM[:3]):  # c0 buys three premium products
        learner.learn(*interaction("c0", track("Order Completed", product_id=item), 10_000 + ts, CONFIG))
    recommender = learner.snapshot(1).recommender
    assert recommender is not None
    profile = Profile("c0", history=[Event(1, "Order Completed", {"product_id": "p3"})])  # and one more in its history
    body = answer(recommender, profile, 24, CONFIG)
    served = [row["product_id"] for row in body["items"]]
    assert body["source"] == PERSONAL and body["model_version"] == 3003
    bought = set(recommender.bought["c0"]) | {"p3"}  # what the trainer saw c0 buy, and its history
    assert {"p0", "p1", "p2"} <= bought and not set(served) & bought
    assert len(served) == 24 - len(bought) and served[0] in PREMIUM
    assert all(row["category"] == CATEGORY[row["product_id"]] for row in body["items"])
    scores = [row["score"] for row in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_a_cold_start_customer_gets_the_popular_items_not_bought() -> None:
    learner = Learner(CONFIG, {}, {})
    shop(learner)
    recommender = learner.snapshot(1).recommender
    assert recommender is not None
    top = max(recommender.items, key=lambda item: recommender.popularity[recommender.items.index(item)])
    body = answer(recommender, Profile("newcomer"), 3, CONFIG)
    assert body["source"] == POPULAR and body["items"][0]["product_id"] == top
    history = [Event(1, "Order Completed", {"product_id": top})]
    assert top not in [row["product_id"] for row in answer(recommender, Profile("newcomer", history=history), 3, CONFIG)["items"]]
    withdrawn = ModelsConfig.model_validate({"purpose": "analytics", "recommendations": {}})
    assert answer(recommender, Profile("c0", consent={"analytics": False}), 3, withdrawn)["source"] == POPULAR


def test_items_and_customers_kept_are_bounded() -> None:
    spec = RecommendationsSpec(items=10, customers=8, negatives=2)
    learner = RecoLearner(spec)
    shop(learner, customers=40, events=800)
    recommender = learner.recommender(1)
    assert len(recommender.items) == 10 and len(recommender.customers) == 8
    assert len(learner.model.i_latents) == 10 and len(learner.model.u_latents) == 8
    assert recommender.item_factors.shape == (10, spec.factors)


def test_a_rule_reads_the_recommended_category(tmp_path: Path) -> None:
    """Worker step -> interactions -> learner -> snapshot -> the next event scores recommended_category -> segment."""
    (tmp_path / "r.yaml").write_text(
        "segments:\n  - name: premium_affine\n    condition: {score: recommended_category, eq: premium}\n"
        "models: {min_examples: 10, churn: {enabled: false}, purchase_propensity: {enabled: false}, ltv: {enabled: false},"
        " clusters: {enabled: false}, recommendations: {k: 5}}\n"
    )
    rules = load_rules(tmp_path)
    assert rules.models is not None
    learner = Learner(rules.models, rules.score_thresholds(), rules.score_segments())
    shop(learner)
    modelling = Modelling(rules.models, learner.snapshot(1), rules.points_at)
    profile = Profile("c0")
    t = 100 * DAY_MS
    step = advance(profile, [(track("Product Viewed", product_id="p5", category="premium"), t)], t, rules, rules.policy(1000), modelling)
    assert [r.kind for r in step.training if r.kind == INTERACTION] == [INTERACTION]
    assert profile.scores["recommended_category"] == {"v": "premium", "m": 3000}
    assert [(c.segment, c.change) for c in step.changes] == [("premium_affine", "entered")]
    budget = Profile("c1")
    advance(budget, [(track("Product Viewed", product_id="b5", category="budget"), t)], t, rules, rules.policy(1000), modelling)
    assert budget.scores["recommended_category"]["v"] == "budget" and "premium_affine" not in budget.memberships


def test_the_count_parameter_is_checked() -> None:
    assert count(None) == 10 and count("3") == 3
    for bad in ("0", "101", "x", "-1", "²"):
        with pytest.raises(ValueError, match="'n' must be an integer from 1 to 100"):
            count(bad)
