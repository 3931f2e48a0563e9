"""The feature function and RFM values: pure, on hand-built profiles."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.models.config import DAY_MS, ModelsConfig
from stream.models.features import CLUSTER_FEATURES, features, rfm_values
from stream.models.records import Rfm
from stream.state.profile import HistoryPolicy, Profile, apply_event

CONFIG = ModelsConfig(purchase_events=["Order Completed", "Subscription Renewed"])
POLICY = HistoryPolicy(horizon_ms=365 * DAY_MS)
NOW = 1_000 * DAY_MS


def track(event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "properties": props}


def profile_with(*events: tuple[dict[str, Any], int]) -> Profile:
    profile = Profile("u1")
    for record, ts in events:
        apply_event(profile, record, ts, POLICY)
    return profile


def at(days_ago: float) -> int:
    return NOW - int(days_ago * DAY_MS)


def x_of(profile: Profile, points: dict[str, float] | None = None) -> dict[str, float]:
    return features(profile, NOW, CONFIG, points or {})


def test_recency_and_tenure_in_days_future_events_count_as_now() -> None:
    p = profile_with((track("A"), at(10)), ({"type": "identify", "traits": {"a": 1}}, at(2.5)))
    assert x_of(p)["recency_days"] == 2.5
    assert x_of(p)["tenure_days"] == 10.0
    apply_event(p, track("A"), NOW + DAY_MS, POLICY)
    assert x_of(p)["recency_days"] == 0.0


def test_event_counts_lifetime_7d_30d_and_active_days() -> None:
    p = profile_with(
        (track("A"), at(40)),
        (track("A"), at(29.5)),
        (track("B"), at(29.4)),
        (track("A"), at(6)),
        (track("A"), NOW + DAY_MS),  # a skewed clock: counted today
        ({"type": "identify", "traits": {}}, at(1)),  # not behaviour
    )
    x = x_of(p)
    assert x["events"] == math.log1p(5)
    assert x["events_30d"] == math.log1p(4)
    assert x["events_7d"] == math.log1p(2)
    assert x["active_days_30d"] == 3.0  # NOW is midnight UTC: 29.5 and 29.4 days ago are one day


def test_window_boundaries_are_exclusive_of_the_start_and_inclusive_of_now() -> None:
    p = profile_with((track("A"), at(30)), (track("A"), at(7)), (track("A"), NOW))
    x = x_of(p)
    assert x["events_30d"] == math.log1p(2)
    assert x["events_7d"] == math.log1p(1)


def test_purchase_revenue_aov_and_has_purchased() -> None:
    p = profile_with(
        (track("Order Completed", revenue=30.0), at(50)),
        (track("Subscription Renewed", total=60), at(20)),
        (track("Refund", revenue=-10.0), at(5)),
    )
    x = x_of(p)
    assert x["purchases"] == math.log1p(2)
    assert x["revenue"] == math.log1p(80.0)
    assert x["aov"] == math.log1p(40.0)
    assert x["has_purchased"] == 1.0
    assert x["days_since_purchase"] == 20.0


def test_a_customer_who_never_purchased() -> None:
    x = x_of(profile_with((track("Product Viewed"), at(1)), (track("Refund", revenue=-5.0), at(1))))
    assert (x["purchases"], x["revenue"], x["aov"], x["has_purchased"]) == (0.0, 0.0, 0.0, 0.0)
    assert x["days_since_purchase"] == 365.0
    assert x["discount_share"] == 0.0
    assert x["views_per_purchase"] == math.log1p(1)


def test_days_since_purchase_is_capped_at_a_year() -> None:
    assert x_of(profile_with((track("Order Completed"), at(500))))["days_since_purchase"] == 365.0


def test_commerce_and_engagement_windows() -> None:
    p = profile_with(
        (track("Product Viewed"), at(40)),
        *[(track("Product Viewed"), at(d)) for d in (1, 2, 3)],
        (track("Product Added"), at(2)),
        ({"type": "page", "name": "Home"}, at(1)),
        ({"type": "screen", "name": "Cart"}, at(1)),
        ({"type": "page", "name": "Old"}, at(31)),
        (track("Email Opened"), at(3)),
        (track("Email Link Clicked"), at(3)),
        (track("Email Opened"), at(45)),
        (track("Order Completed"), at(10)),
    )
    x = x_of(p)
    assert x["views_30d"] == math.log1p(3)
    assert x["carts_30d"] == math.log1p(1)
    assert x["pages_30d"] == math.log1p(2)
    assert x["email_engagement_30d"] == math.log1p(2)
    assert x["views_per_purchase"] == math.log1p(4 / 1)


def test_discount_share_over_purchases_in_history() -> None:
    p = profile_with(
        (track("Order Completed", coupon="SPRING"), at(60)),
        (track("Order Completed", discount=5), at(40)),
        (track("Order Completed", discount=0, coupon=""), at(20)),
        (track("Order Completed"), at(10)),
        (track("Product Viewed", coupon="X"), at(5)),
    )
    assert x_of(p)["discount_share"] == 0.5


def test_declared_scores_become_features() -> None:
    x = x_of(profile_with((track("A"), at(1))), {"lead_score": 12.5, "engagement": 0.25})
    assert (x["score.lead_score"], x["score.engagement"]) == (12.5, 0.25)


def test_empty_profile_and_cluster_features_are_features() -> None:
    x = x_of(Profile("u1"))
    assert set(CLUSTER_FEATURES) <= set(x)
    assert x["recency_days"] == x["tenure_days"] == 0.0
    assert all(isinstance(v, float) for v in x.values())


def test_rfm_values() -> None:
    assert rfm_values(profile_with((track("Product Viewed"), at(1))), CONFIG) is None
    p = profile_with(
        (track("Order Completed", revenue=10.0), at(30)),
        (track("Subscription Renewed", revenue=5.0), at(3)),
        (track("Order Completed", revenue=20.0), at(8)),  # out of order
    )
    assert rfm_values(p, CONFIG) == Rfm(last_purchase=at(3), frequency=3, monetary=35.0)


NAMES = st.sampled_from(["Order Completed", "Product Viewed", "Product Added", "Email Opened", "A"])
NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**30), 10**30)
PROPS = st.dictionaries(st.sampled_from(["revenue", "total", "coupon", "discount"]), NUMBERS | st.text(max_size=3) | st.booleans(), max_size=3)
TIMES = st.integers(NOW - 10_000 * DAY_MS, NOW + 10_000 * DAY_MS)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(NAMES, PROPS, TIMES), max_size=20),
    points=st.dictionaries(st.sampled_from(["lead_score", "engagement"]), st.floats(allow_nan=True, allow_infinity=True)),
    now=TIMES,
)
def test_every_feature_is_a_finite_float(events: list[tuple[str, dict[str, Any], int]], points: dict[str, float], now: int) -> None:
    p = profile_with(*[(track(name, **props), ts) for name, props, ts in events])
    x = features(p, now, CONFIG, points)
    assert all(isinstance(v, float) and math.isfinite(v) for v in x.values())
    assert set(CLUSTER_FEATURES) <= set(x)
