"""Delayed labels: sampling points, one open example per kind, resolution by events and by timers."""

from __future__ import annotations

from typing import Any

import pytest

from stream.models import labels
from stream.models.config import DAY_MS, ModelsConfig
from stream.models.records import OBSERVATION, TrainingRecord
from stream.state.profile import Profile

CONFIG = ModelsConfig.model_validate(
    {"sample_every": "1d", "churn": {"horizon": "10d"}, "purchase_propensity": {"horizon": "5d"}, "ltv": {"horizon": "20d"}}
)
T0 = 100 * DAY_MS
X = {"recency_days": 0.0, "purchases": 0.0}
H = {"churn": 10 * DAY_MS, "purchase_propensity": 5 * DAY_MS, "ltv": 20 * DAY_MS}


def track(event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "properties": props}


def opened(config: ModelsConfig = CONFIG) -> Profile:
    """A profile sampled at T0, served a churn score, member of two segments."""
    profile = Profile("u1", memberships={"vip": 1, "active": 2}, scores={"churn": {"v": 0.25, "m": 3}})
    labels.sample(profile, T0, X, config)
    return profile


def by_kind(records: list[TrainingRecord]) -> dict[str, TrainingRecord]:
    return {r.kind: r for r in records}


def test_a_sampling_point_emits_an_observation_and_opens_one_example_per_enabled_kind() -> None:
    profile = opened()
    assert profile.sampled_at == T0
    assert set(profile.examples) == {"churn", "purchase_propensity", "ltv"}
    assert profile.examples["churn"] == {"t0": T0, "end": T0 + H["churn"], "x": X, "served": 0.25, "model": 3, "segments": ["active", "vip"]}
    assert profile.examples["ltv"]["served"] is None and profile.examples["ltv"]["revenue"] == 0.0
    [observation] = labels.sample(Profile("u2"), T0, X, CONFIG)
    assert (observation.kind, observation.at, observation.x, observation.y) == (OBSERVATION, T0, X, None)


def test_disabled_kinds_are_not_opened() -> None:
    config = CONFIG.model_copy(update={"ltv": CONFIG.ltv.model_copy(update={"enabled": False})})
    assert set(opened(config).examples) == {"churn", "purchase_propensity"}


def test_sampling_points_are_a_grid_that_stops_once_the_customer_is_silent_past_the_churn_horizon() -> None:
    profile = Profile("u1")
    assert labels.next_sample(profile, CONFIG) is None  # before the first event
    profile.sampled_at, profile.last_seen = T0, T0
    assert labels.next_sample(profile, CONFIG) == T0 + DAY_MS
    profile.sampled_at = T0 + 9 * DAY_MS
    assert labels.next_sample(profile, CONFIG) == T0 + 10 * DAY_MS  # still within the 10 d churn horizon
    profile.sampled_at = T0 + 10 * DAY_MS
    assert labels.next_sample(profile, CONFIG) is None  # silent for longer: no more sampling
    assert labels.silence(CONFIG) == H["churn"]
    no_churn = CONFIG.model_copy(update={"churn": CONFIG.churn.model_copy(update={"enabled": False})})
    assert labels.silence(no_churn) == H["ltv"]


def test_one_open_example_per_kind_at_a_time() -> None:
    profile = opened()
    labels.resolve(profile, track("A"), T0 + DAY_MS, CONFIG)  # resolves churn only
    labels.sample(profile, T0 + 2 * DAY_MS, {"recency_days": 2.0}, CONFIG)
    assert profile.examples["churn"]["t0"] == T0 + 2 * DAY_MS
    assert profile.examples["purchase_propensity"]["t0"] == T0
    assert profile.examples["ltv"]["t0"] == T0


def test_churn_any_event_in_the_window_labels_0() -> None:
    profile = opened()
    [record] = labels.resolve(profile, {"type": "identify", "traits": {"a": 1}}, T0 + 3 * DAY_MS, CONFIG)
    assert (record.kind, record.y, record.resolved_at, record.at) == ("churn", 0.0, T0 + 3 * DAY_MS, T0)
    assert (record.x, record.served, record.model, record.segments) == (X, 0.25, 3, ("active", "vip"))
    assert "churn" not in profile.examples


def test_churn_window_passing_labels_1_at_the_horizon() -> None:
    profile = opened()
    assert "churn" not in by_kind(labels.expire(profile, T0 + H["churn"]))
    record = by_kind(labels.expire(profile, T0 + H["churn"] + 1))["churn"]
    assert (record.kind, record.y, record.resolved_at) == ("churn", 1.0, T0 + H["churn"])


def test_purchase_propensity() -> None:
    profile = opened()
    assert "purchase_propensity" not in by_kind(labels.resolve(profile, track("Product Viewed"), T0 + DAY_MS, CONFIG))
    [record] = labels.resolve(profile, track("Order Completed", revenue=5), T0 + 2 * DAY_MS, CONFIG)
    assert (record.kind, record.y, record.resolved_at) == ("purchase_propensity", 1.0, T0 + 2 * DAY_MS)
    [expired] = labels.expire(opened(), T0 + H["purchase_propensity"] + 1)
    assert (expired.kind, expired.y, expired.resolved_at) == ("purchase_propensity", 0.0, T0 + H["purchase_propensity"])


def test_ltv_accumulates_purchase_revenue_until_the_horizon() -> None:
    profile = opened()
    labels.resolve(profile, track("Order Completed", revenue=10.0), T0 + DAY_MS, CONFIG)
    labels.resolve(profile, track("Refund Issued", revenue=-99.0), T0 + 2 * DAY_MS, CONFIG)  # not a purchase
    labels.resolve(profile, track("Order Completed", total=2.5), T0 + 15 * DAY_MS, CONFIG)
    assert profile.examples["ltv"]["revenue"] == 12.5
    [record] = labels.expire(profile, T0 + H["ltv"] + 1)
    assert (record.kind, record.y, record.resolved_at) == ("ltv", 12.5, T0 + H["ltv"])


def test_an_event_exactly_at_the_horizon_is_inside_the_window() -> None:
    profile = opened()
    end = T0 + H["purchase_propensity"]
    records = by_kind(labels.resolve(profile, track("Order Completed", revenue=4.0), end, CONFIG))
    assert records["churn"].y == 0.0 and records["purchase_propensity"].y == 1.0
    assert profile.examples["ltv"]["revenue"] == 4.0
    profile = opened()
    end = T0 + H["ltv"]
    labels.resolve(profile, track("Order Completed", revenue=4.0), end, CONFIG)
    labels.resolve(profile, track("Order Completed", revenue=8.0), end + 1, CONFIG)
    assert by_kind(labels.expire(profile, end + 1))["ltv"].y == 4.0


@pytest.mark.parametrize("offset", [0, -1, -DAY_MS])
def test_events_at_or_before_t0_never_resolve(offset: int) -> None:
    profile = opened()
    assert labels.resolve(profile, track("Order Completed", revenue=7.0), T0 + offset, CONFIG) == []
    assert set(profile.examples) == {"churn", "purchase_propensity", "ltv"}
    assert profile.examples["ltv"]["revenue"] == 0.0


def test_expire_resolves_every_window_over_in_order() -> None:
    profile = opened()
    records = labels.expire(profile, T0 + 365 * DAY_MS)
    assert [(r.kind, r.resolved_at) for r in records] == [
        ("purchase_propensity", T0 + H["purchase_propensity"]),
        ("churn", T0 + H["churn"]),
        ("ltv", T0 + H["ltv"]),
    ]
    assert profile.examples == {}


def test_next_expiry() -> None:
    assert labels.next_expiry(Profile("u1")) is None
    profile = opened()
    assert labels.next_expiry(profile) == T0 + H["purchase_propensity"] + 1
    labels.expire(profile, T0 + H["purchase_propensity"] + 1)
    assert labels.next_expiry(profile) == T0 + H["churn"] + 1


def test_ids_are_deterministic_and_open_examples_survive_serialisation() -> None:
    first, second = opened(), Profile.from_bytes(opened().to_bytes())
    assert second.examples == first.examples
    a = labels.resolve(first, track("Order Completed", revenue=1.0), T0 + DAY_MS, CONFIG) + labels.expire(first, T0 + 99 * DAY_MS)
    b = labels.resolve(second, track("Order Completed", revenue=1.0), T0 + DAY_MS, CONFIG) + labels.expire(second, T0 + 99 * DAY_MS)
    assert a == b
    assert [r.id for r in a] == [r.id for r in b]
    assert len({r.id for r in a}) == 3
    assert all(TrainingRecord.from_bytes(r.to_bytes()) == r for r in a)
