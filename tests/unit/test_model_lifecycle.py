"""The worker-side glue: labels and scoring around each event, and the next deadline, with a fake snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream.models.config import DAY_MS, ModelsConfig
from stream.models.lifecycle import Modelling
from stream.models.records import OBSERVATION, Rfm, TrainingRecord
from stream.rules import load_rules
from stream.state.profile import Profile
from stream.worker.step import advance

CONFIG = ModelsConfig.model_validate(
    {"sample_every": "1d", "rescore_every": "1d", "churn": {"horizon": "10d"}, "purchase_propensity": {"horizon": "5d"}, "ltv": {"horizon": "20d"}}
)
T0 = 100 * DAY_MS
RFM_STEP = 7 * DAY_MS


class FakeSnapshot:
    """Churn rises by 0.25 a day of inactivity; rfm_recency is 5 within a week of the latest purchase, else 1."""

    medians: dict[str, float] = {}

    def __init__(self, version: int = 1) -> None:
        self.version = version
        self.calls: list[tuple[dict[str, float], Rfm | None, int]] = []

    def score(self, x: dict[str, float], rfm: Rfm | None, now: int) -> tuple[dict[str, dict[str, Any]], int | None]:
        self.calls.append((x, rfm, now))
        scores = {"churn": {"v": min(1.0, 0.25 * x["recency_days"]), "m": self.version}}
        if rfm is None:
            return scores, None
        recent = now < rfm.last_purchase + RFM_STEP
        scores["rfm_recency"] = {"v": 5 if recent else 1, "m": self.version}
        return scores, rfm.last_purchase + RFM_STEP if recent else None


def track(event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "properties": props}


def sampled(modelling: Modelling) -> Profile:
    """A profile whose event at T0 was applied and sampled."""
    profile = Profile("u1", first_seen=T0, last_seen=T0, counts={"A": 1})
    modelling.after_event(profile, T0, {})
    return profile


def test_without_a_snapshot_nothing_is_scored_but_labels_are_learned() -> None:
    m = Modelling(CONFIG)
    profile = Profile("u1", scores={"churn": {"v": 0.5, "m": 1}})
    m.score(profile, T0, {})
    assert profile.scores == {"churn": {"v": 0.5, "m": 1}}
    assert m.deadline(profile, T0) is None
    records = m.after_event(profile, T0, {"lead_score": 2.0})
    assert [r.kind for r in records] == [OBSERVATION]
    assert records[0].x["score.lead_score"] == 2.0
    assert m.after_event(profile, T0 + DAY_MS - 1, {}) == []
    assert m.deadline(profile, T0) == T0 + 5 * DAY_MS + 1


def test_score_replaces_the_model_scores() -> None:
    snapshot = FakeSnapshot(version=4)
    m = Modelling(CONFIG, snapshot)
    profile = Profile("u1", last_seen=T0, scores={"churn": {"v": 0.9, "m": 3}, "cluster": {"v": 2, "m": 3}})
    m.score(profile, T0 + 2 * DAY_MS, {"lead_score": 1.0})
    assert profile.scores == {"churn": {"v": 0.5, "m": 4}}
    x, rfm, now = snapshot.calls[0]
    assert (x["recency_days"], x["score.lead_score"], rfm, now) == (2.0, 1.0, None, T0 + 2 * DAY_MS)


def test_deadline_is_the_earliest_of_expiry_rfm_change_and_rescore() -> None:
    m = Modelling(CONFIG, FakeSnapshot())
    profile = Profile("u1", last={"Order Completed": T0}, counts={"Order Completed": 1}, last_seen=T0)
    m.score(profile, T0 + 6 * DAY_MS + 1, {})
    assert m.deadline(profile, T0 + 6 * DAY_MS + 1) == T0 + RFM_STEP  # before the rescore a day later
    m.score(profile, T0, {})
    assert m.deadline(profile, T0) == T0 + DAY_MS  # rescore
    profile.examples = {"churn": {"t0": T0 - DAY_MS, "end": T0 + 3_600_000}}
    m.score(profile, T0, {})
    assert m.deadline(profile, T0) == T0 + 3_600_000 + 1  # expiry


def test_deadline_is_after_now_and_needs_scores_to_rescore() -> None:
    m = Modelling(CONFIG, FakeSnapshot())
    assert m.deadline(Profile("u1"), T0) is None  # a snapshot, but nothing scored
    profile = Profile("u1", examples={"churn": {"t0": 0, "end": T0 - 5}})  # not expired yet by the caller
    assert m.deadline(profile, T0) == T0 + 1


def test_before_event_expires_windows_over_then_resolves() -> None:
    m = Modelling(CONFIG)
    profile = sampled(m)
    ts = T0 + 6 * DAY_MS  # after the propensity window (5d), inside churn (10d) and ltv (20d)
    records = m.before_event(profile, track("Order Completed", revenue=3.0), ts)
    # The propensity window ended first; the grid point missed at T0+1d is sampled (features as of then,
    # opening a new propensity example), then the purchase labels churn and that new example.
    assert [(r.kind, r.at, r.y, r.resolved_at) for r in records] == [
        ("purchase_propensity", T0, 0.0, T0 + 5 * DAY_MS),
        (OBSERVATION, T0 + DAY_MS, None, None),
        ("churn", T0, 0.0, ts),
        ("purchase_propensity", T0 + DAY_MS, 1.0, ts),
    ]
    assert profile.examples["ltv"]["revenue"] == 3.0


def test_after_event_records_the_served_score_and_segments() -> None:
    m = Modelling(CONFIG, FakeSnapshot(version=7))
    profile = Profile("u1", first_seen=T0, last_seen=T0 - DAY_MS, memberships={"b": 1, "a": 1})
    m.score(profile, T0, {})
    m.after_event(profile, T0, {})
    assert profile.examples["churn"]["served"] == 0.25
    assert profile.examples["churn"]["model"] == 7
    assert profile.examples["ltv"]["served"] is None
    assert profile.examples["ltv"]["segments"] == ["a", "b"]


def test_a_little_lifecycle_through_the_worker_step(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "segments:\n  - name: at_risk\n    condition: {score: churn, gte: 0.5}\n"
        "models: {sample_every: 1d, rescore_every: 1d, churn: {horizon: 10d}, purchase_propensity: {horizon: 5d}, ltv: {horizon: 20d}}\n"
    )
    rules = load_rules(tmp_path)
    assert rules.models is not None
    policy = rules.policy(1000)
    snapshot = FakeSnapshot()
    m = Modelling(rules.models, snapshot)
    profile = Profile("u1")
    training: list[TrainingRecord] = []
    changes: list[tuple[str, str, int]] = []

    def step(events: list[tuple[dict[str, Any], int]], now: int) -> None:
        result = advance(profile, events, now, rules, policy, m)
        training.extend(result.training)
        changes.extend((c.segment, c.change, c.at) for c in result.changes)

    step([(track("Product Viewed"), T0)], T0)
    assert [r.kind for r in training] == [OBSERVATION]
    assert set(profile.examples) == {"churn", "purchase_propensity", "ltv"}
    assert profile.scores == {"churn": {"v": 0.0, "m": 1}}
    assert profile.deadline == T0 + DAY_MS  # the next sampling point (and rescore)

    while profile.deadline is not None and profile.deadline <= T0 + 3 * DAY_MS:  # timers while the customer is away
        step([], profile.deadline)
    assert changes == [("at_risk", "entered", T0 + 2 * DAY_MS)]
    assert [(r.kind, r.at) for r in training[1:]] == [(OBSERVATION, T0 + d * DAY_MS) for d in (1, 2, 3)]

    ts = T0 + 3 * DAY_MS
    step([(track("Order Completed", revenue=40.0), ts)], ts)
    assert changes[-1] == ("at_risk", "exited", ts)
    assert [(r.kind, r.y) for r in training[4:]] == [("churn", 0.0), ("purchase_propensity", 1.0)]
    assert profile.scores["rfm_recency"] == {"v": 5, "m": 1}
    assert (profile.examples["ltv"]["t0"], profile.examples["ltv"]["revenue"]) == (T0, 40.0)

    while profile.deadline is not None and profile.deadline <= T0 + 30 * DAY_MS:
        step([], profile.deadline)
    labelled = {(r.kind, r.at): (r.y, r.resolved_at) for r in training[6:] if r.kind != OBSERVATION}
    t1 = T0 + 4 * DAY_MS  # the first sampling point after the purchase opens new examples
    assert labelled[("churn", t1)] == (1.0, t1 + 10 * DAY_MS)  # silent ever since
    assert labelled[("purchase_propensity", t1)] == (0.0, t1 + 5 * DAY_MS)
    assert labelled[("ltv", T0)] == (40.0, T0 + 20 * DAY_MS)
    sampled = [r.at for r in training if r.kind == OBSERVATION]
    assert max(sampled) == ts + 10 * DAY_MS  # sampled while silent for up to the churn horizon, then no more
    assert profile.examples == {}
    assert ts + RFM_STEP in {now for _, _, now in snapshot.calls}  # woken when rfm_recency changed
    assert profile.scores["rfm_recency"] == {"v": 1, "m": 1}
    assert len({r.id for r in training}) == len(training)
