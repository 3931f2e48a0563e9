"""Declared scores: decay math, crossing deadlines, point rules, the ``score:`` condition, loading and the shipped scores."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stream.models.config import FEATURE_WINDOW_MS, ModelsConfig
from stream.rules import RuleError, RuleSet, Segment, load_rules, parse_condition
from stream.rules.scores import PointRule, ScoreCondition, ScoreDefinition, add_points, next_crossing, value_at
from stream.state.profile import Event, Profile

ROOT = Path(__file__).resolve().parents[2]
D = 86_400_000
NOW = 1_700_000_000_000

LEAD = ScoreDefinition(
    name="lead_score",
    half_life="14d",
    points=[{"event": "Product Viewed"}, {"event": "page", "where": {"name": {"eq": "Pricing"}}, "points": 5}, {"event": "Order Completed", "points": 10}],
)
FOREVER = ScoreDefinition(name="karma", points=[{"event": "$any"}])


def track(event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "properties": props}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(RuleError) as exc:
        load_rules(path)
    return exc.value.errors


def bound(condition: dict[str, Any], *scores: ScoreDefinition) -> ScoreCondition:
    score = ScoreCondition.model_validate(condition, context={"scores": {s.name: s for s in scores}})
    assert isinstance(score, ScoreCondition)
    return score


# --- decay math ---------------------------------------------------------------------------------


def test_the_value_halves_every_half_life_and_never_decays_without_one() -> None:
    h = 14 * D
    entry = add_points(None, 8.0, NOW, h)
    assert entry == [8.0, NOW]
    assert value_at(entry, h, NOW + h) == 4.0 and value_at(entry, h, NOW + 2 * h) == 2.0
    assert value_at(entry, None, NOW + 1000 * D) == 8.0
    assert value_at(None, h, NOW) == 0.0
    assert value_at(entry, h, NOW - h) == 16.0, "before as_of the formula grows the value"


def test_a_later_event_decays_then_adds_an_earlier_one_adds_decayed_points() -> None:
    assert add_points([8.0, NOW], 1.0, NOW + 1000, 1000) == [5.0, NOW + 1000]
    assert add_points([8.0, NOW], 4.0, NOW - 1000, 1000) == [10.0, NOW]
    assert add_points([8.0, NOW], 4.0, NOW - 1000, None) == [12.0, NOW]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60 * D), st.floats(0.01, 50) | st.floats(-50, -0.01)), min_size=1, max_size=12),
    st.integers(1, 30 * D),
    st.randoms(use_true_random=False),
)
def test_any_order_of_the_same_events_gives_the_same_value(events: list[tuple[int, float]], half_life: int, rng: random.Random) -> None:
    def fold(order: list[tuple[int, float]]) -> list[float]:
        entry = None
        for ts, points in order:
            entry = add_points(entry, points, ts, half_life)
        assert entry is not None
        return entry

    in_time = fold(sorted(events))
    shuffled = events[:]
    rng.shuffle(shuffled)
    other = fold(shuffled)
    assert other[1] == in_time[1] == max(ts for ts, _ in events)
    at = in_time[1] + half_life
    scale = sum(abs(p) for _, p in events) or 1.0
    assert abs(value_at(other, half_life, at) - value_at(in_time, half_life, at)) <= 1e-9 * scale


# --- crossing deadlines -------------------------------------------------------------------------


def test_next_crossing_is_the_first_ms_on_another_side() -> None:
    entry = [40.0, 0]
    assert next_crossing(entry, 1000, [20, 50], 0) == 1000, "exactly 20 at one half-life"
    assert next_crossing(entry, 1000, [20, 50], 1000) == 1001
    assert next_crossing(entry, 1000, [50], 0) is None, "above the value lies never ahead"
    assert value_at(entry, 1000, next_crossing(entry, 1000, [0], 0)) == 0.0 < value_at(entry, 1000, next_crossing(entry, 1000, [0], 0) - 1), "0 where it underflows"
    assert next_crossing(entry, None, [20], 0) is None and next_crossing(None, 1000, [20], 0) is None
    assert next_crossing([-40.0, 0], 1000, [-20, 20], 0) == 1000


@pytest.mark.parametrize(("value", "op", "threshold", "deadline"), [
    (40.0, "gte", 20, 1001), (40.0, "gt", 20, 1000), (40.0, "lt", 20, 1001), (40.0, "lte", 20, 1000),
    (-40.0, "gte", -20, 1000), (-40.0, "gt", -20, 1001), (-40.0, "lt", -20, 1000), (-40.0, "lte", -20, 1001),
])  # fmt: skip
def test_the_deadline_is_exact_for_each_operator_at_an_exact_crossing(value: float, op: str, threshold: float, deadline: int) -> None:
    score = ScoreDefinition(name="s", half_life="1s", points=[{"event": "A"}])
    verdict = bound({"score": "s", op: threshold}, score).evaluate(Profile("c", points={"s": [value, 0]}), 0)
    assert verdict.deadline == deadline


@settings(max_examples=400, deadline=None)
@given(
    value=st.one_of(st.floats(1e-6, 1e6), st.floats(-1e6, -1e-6)),
    half_life=st.integers(1, 30 * D),
    since=st.integers(-10 * D, 60 * D),
    op=st.sampled_from(["gte", "gt", "lt", "lte"]),
    ratio=st.floats(-1.5, 1.5),
)
def test_at_the_deadline_the_comparison_has_flipped_and_one_ms_before_it_has_not(
    value: float, half_life: int, since: int, op: str, ratio: float
) -> None:
    score = ScoreDefinition(name="s", half_life=f"{half_life}ms", points=[{"event": "A"}])
    entry = [value, NOW]
    now = NOW + since
    threshold = value_at(entry, half_life, now) * ratio
    assume(math.isfinite(threshold))
    condition = bound({"score": "s", op: threshold}, score)
    profile = Profile("c", points={"s": entry})
    verdict = condition.evaluate(profile, now)
    if verdict.deadline is None:
        far = max(now, NOW) + 2000 * half_life
        assert condition.predicate(value_at(entry, half_life, far)) == verdict.holds
        return
    assert verdict.deadline > now
    assert condition.evaluate(profile, verdict.deadline).holds != verdict.holds
    assert condition.evaluate(profile, verdict.deadline - 1).holds == verdict.holds


# --- point rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(("props", "points"), [
    ({"scroll_depth": 80}, 1.6), ({"scroll_depth": "50"}, 1.0), ({"scroll_depth": 500}, 2.0), ({"scroll_depth": -500}, -2.0),
    ({}, 0.0), ({"scroll_depth": "deep"}, 0.0), ({"scroll_depth": True}, 0.0),
])  # fmt: skip
def test_of_multiplies_a_numeric_property_and_max_caps_its_size(props: dict[str, Any], points: float) -> None:
    rule = PointRule(event="page", of="scroll_depth", points=0.02, max=2)
    assert rule.earned(Event(NOW, "page", props)) == pytest.approx(points)


def test_where_filters_the_events_that_earn_points() -> None:
    rule = PointRule.model_validate({"event": "page", "where": {"name": {"eq": "Pricing"}}, "points": 5})
    assert rule.earned(Event(NOW, "page", {"name": "Pricing"})) == 5
    assert rule.earned(Event(NOW, "page", {"name": "Home"})) == 0


def test_apply_points_sums_matching_rules_and_ignores_other_events() -> None:
    engagement = ScoreDefinition(
        name="engagement",
        points=[{"event": "page"}, {"event": "page", "of": "time_on_page", "points": 0.01, "max": 3}, {"event": "Email Opened"}],
    )
    ruleset = RuleSet({}, scores={"lead_score": LEAD, "engagement": engagement, "karma": FOREVER})
    profile = Profile("c")
    ruleset.apply_points(profile, {"type": "page", "name": "Pricing", "properties": {"time_on_page": 120}}, NOW)
    assert profile.points == {"lead_score": [5.0, NOW], "engagement": [pytest.approx(2.2), NOW], "karma": [1.0, NOW]}
    ruleset.apply_points(profile, {"type": "identify", "traits": {"plan": "pro"}}, NOW)
    ruleset.apply_points(profile, track("Unscored"), NOW + D)
    assert profile.points["lead_score"] == [5.0, NOW] and profile.points["karma"] == [2.0, NOW + D], "only $any counts it"
    ruleset.apply_points(profile, track("Order Completed"), NOW + 14 * D)
    assert ruleset.points_at(profile, NOW + 14 * D) == {"lead_score": 12.5, "engagement": pytest.approx(2.2), "karma": 3.0}
    assert RuleSet({}).points_at(profile, NOW) == {}


def test_an_event_matching_no_score_creates_no_entry() -> None:
    ruleset = RuleSet({}, scores={"lead_score": LEAD})
    profile = Profile("c")
    ruleset.apply_points(profile, {"type": "screen", "name": "Home"}, NOW)
    ruleset.apply_points(profile, {"type": "page", "name": "Home"}, NOW)
    assert profile.points == {}


# --- the condition ------------------------------------------------------------------------------


def test_a_declared_score_is_decayed_to_now_and_zero_without_points() -> None:
    condition = bound({"score": "lead_score", "gte": 20}, LEAD)
    profile = Profile("c", points={"lead_score": [47.0, NOW]})
    verdict = condition.evaluate(profile, NOW + 14 * D)
    assert verdict.holds and verdict.reason == "score lead_score = 23.5 >= 20"
    assert verdict.deadline == NOW + 14 * D + math.floor(14 * D * math.log2(23.5 / 20)) + 1
    assert condition.evaluate(Profile("c"), NOW) == condition.evaluate(Profile("c"), NOW).__class__(False, "score lead_score = 0, not >= 20")
    assert bound({"score": "lead_score", "lt": 5}, LEAD).evaluate(Profile("c"), NOW).holds, "no points: the score is 0"


def test_a_score_without_half_life_has_no_deadline() -> None:
    verdict = bound({"score": "karma", "gte": 2}, FOREVER).evaluate(Profile("c", points={"karma": [3.0, NOW]}), NOW + 1000 * D)
    assert verdict.holds and verdict.deadline is None and verdict.reason == "score karma = 3 >= 2"


def test_a_model_score_reads_the_profile_scores_and_missing_compares_false() -> None:
    scored = Profile("c", scores={"churn": {"v": 0.82, "m": 3}, "rfm": {"v": "545", "m": 3}, "cluster": {"v": 2, "m": 3}})
    assert parse_condition({"score": "churn", "gt": 0.7}).evaluate(scored, NOW).reason == "score churn = 0.82 > 0.7"
    assert parse_condition({"score": "churn", "lte": 0.7}).evaluate(scored, NOW).reason == "score churn = 0.82, not <= 0.7"
    assert parse_condition({"score": "cluster", "in": [1, 2]}).evaluate(scored, NOW).holds
    assert parse_condition({"score": "rfm", "starts_with": "5"}).evaluate(scored, NOW).holds
    missing = parse_condition({"score": "churn", "lt": 0.3}).evaluate(Profile("c"), NOW)
    assert (missing.holds, missing.reason, missing.deadline) == (False, "score churn missing", None)
    assert parse_condition({"score": "ltv", "exists": False}).evaluate(Profile("c"), NOW).holds


def test_operands_must_be_numbers_except_for_the_rfm_text() -> None:
    with pytest.raises(ValidationError, match="score 'churn' is a number; compare it with numbers, e.g. 'gte: 20', got eq: \"high\""):
        parse_condition({"score": "churn", "eq": "high"})
    assert parse_condition({"score": "rfm", "in": ["555", "554"]}).kind == "score"


def test_an_unbound_declared_score_says_how_to_evaluate_it() -> None:
    with pytest.raises(KeyError, match="evaluate it through a RuleSet"):
        parse_condition({"score": "lead_score", "gte": 1}).evaluate(Profile("c"), NOW)


# --- the rule set -------------------------------------------------------------------------------


def segment(name: str, condition: dict[str, Any]) -> Segment:
    return Segment.model_validate({"name": name, "condition": condition})


def test_a_rule_set_built_directly_binds_its_declared_scores() -> None:
    ruleset = RuleSet(
        {
            "hot": segment("hot", {"score": "lead_score", "gte": 20}),
            "warm_not_risky": segment("warm_not_risky", {"all": [{"score": "lead_score", "between": [5, 20]}, {"not": {"score": "churn", "gt": 0.7}}]}),
            "plain": segment("plain", {"trait": "plan", "eq": "pro"}),
        },
        scores={"lead_score": LEAD},
        models=ModelsConfig(),
    )
    verdicts = ruleset.evaluate(Profile("c", points={"lead_score": [25.0, NOW]}), NOW)
    assert verdicts["hot"].holds and verdicts["hot"].deadline is not None
    assert ruleset.score_thresholds() == {"lead_score": [5, 20], "churn": [0.7]}
    assert ruleset.score_segments() == {"hot": {"lead_score"}, "warm_not_risky": {"lead_score", "churn"}}
    assert ruleset.policy(10).horizon_ms == FEATURE_WINDOW_MS == 30 * D
    assert RuleSet(ruleset.segments, scores=ruleset.scores).policy(10).horizon_ms == 0, "no models: no feature window"


def test_unknown_score_names_in_a_rule_set_name_the_closest_score() -> None:
    with pytest.raises(RuleError) as exc:
        RuleSet({"hot": segment("hot", {"score": "lead_scor", "gte": 20}), "risk": segment("risk", {"score": "chrun", "gt": 0.5})}, scores={"lead_score": LEAD})
    assert exc.value.errors[0] == "segment 'hot': unknown score 'lead_scor' (did you mean 'lead_score'?); declare it under 'scores:' or use a model score (churn, purchase_propensity, ltv, rfm_recency, rfm_frequency, rfm_monetary, rfm, cluster, recommended_category)"
    assert exc.value.errors[1].startswith("segment 'risk': unknown score 'chrun' (did you mean 'churn'?)")


def test_the_version_follows_scores_and_models() -> None:
    segments = {"hot": segment("hot", {"score": "lead_score", "gte": 20})}
    base = RuleSet(segments, scores={"lead_score": LEAD})
    assert RuleSet(segments, scores={"lead_score": LEAD}).version == base.version
    slower = LEAD.model_copy(update={"half_life": 28 * D})
    assert RuleSet(segments, scores={"lead_score": slower}).version != base.version
    assert RuleSet(segments, scores={"lead_score": LEAD}, models=ModelsConfig()).version != base.version


# --- loading ------------------------------------------------------------------------------------

SCORES = """scores:
  - name: lead_score
    half_life: 14d
    points:
      - {event: Order Completed, points: 10}
"""


def test_scores_segments_and_models_may_live_in_different_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "segments:\n  - {name: hot, condition: {score: lead_score, gte: 20}}\n")
    write(tmp_path, "b.yaml", SCORES + "models: {churn: {horizon: 60d}}\n")
    ruleset = load_rules(tmp_path)
    assert ruleset.scores["lead_score"].half_life == 14 * D and ruleset.scores["lead_score"].source == tmp_path / "b.yaml"
    assert ruleset.models is not None and ruleset.models.churn.horizon == 60 * D
    profile = Profile("c")
    for _ in range(2):
        ruleset.apply_points(profile, track("Order Completed"), NOW)
    assert ruleset.evaluate(profile, NOW)["hot"].holds


def test_loader_errors_name_file_score_and_field(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "a.yaml",
        SCORES
        + "  - {name: churn, points: [{event: X}]}\n"
        "  - {name: fast, half_life: soon, points: []}\n"
        "  - {name: capped, points: [{event: X, max: -1, pts: 2}]}\n"
        "models: {churn: {horizon: 30 days}}\n",
    )
    b = write(tmp_path, "b.yaml", SCORES + "models: {}\nsegment: []\n")
    errors = errors_of(tmp_path)
    assert errors == [
        f"{b}: unknown top-level key 'segment' (did you mean 'segments'?); a rule file holds only 'segments:', 'scores:' and 'models:'",
        f"{a}: score 'churn': name: 'churn' is a score the models produce (churn, purchase_propensity, ltv, rfm_recency, rfm_frequency, rfm_monetary, rfm, cluster, recommended_category); choose another name, e.g. 'churn_points'",
        f"{a}: score 'fast': half_life: expected a duration like '24h', got 'soon' (units ms, s, m, h, d, w, combined as in '1h30m'; a bare integer is seconds)",
        f"{a}: score 'fast': points: must not be empty",
        f"{a}: score 'capped': points[0]: unknown key 'pts' (did you mean 'points'?); allowed keys: event, where, points, of, max",
        f"{b}: score 'lead_score': duplicate name, already defined in {a}; rename one",
        f"{a}: models: churn.horizon: expected a duration like '24h', got '30 days' (units ms, s, m, h, d, w, combined as in '1h30m'; a bare integer is seconds)",
        f"{b}: models: already defined in {a}; keep one 'models:' section, in one file",
    ]


def test_an_unknown_score_in_a_file_names_the_field_and_the_closest_score(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", SCORES + "segments:\n  - {name: hot, condition: {all: [{trait: a, exists: true}, {score: lead_scroe, gte: 20}]}}\n")
    [error] = errors_of(tmp_path)
    assert error.startswith(f"{path}: segment 'hot': condition.all[1].score: unknown score 'lead_scroe' (did you mean 'lead_score'?); declare it under 'scores:'")


def test_a_file_may_hold_only_scores_or_only_models(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", "models: {}\n")
    assert load_rules(tmp_path).models is not None and not load_rules(tmp_path).segments
    write(tmp_path, "m.yaml", SCORES)
    assert set(load_rules(tmp_path).scores) == {"lead_score"} and not load_rules(tmp_path).segments


# --- the shipped rules/scores.yaml --------------------------------------------------------------


def test_shipped_score_segments() -> None:
    ruleset = load_rules(ROOT / "rules")
    assert ruleset.models is not None and ruleset.models.clusters.k == 4
    lead = Profile("lead")
    for event in ["Product Viewed", "Product Added", "Order Completed"]:
        ruleset.apply_points(lead, track(event), NOW)
    ruleset.apply_points(lead, {"type": "page", "name": "Pricing", "properties": {"scroll_depth": 100, "time_on_page": 600}}, NOW)
    assert ruleset.points_at(lead, NOW) == {"lead_score": 19.0, "engagement": pytest.approx(6.0)}
    ruleset.apply_points(lead, track("Product Viewed"), NOW)
    verdicts = ruleset.evaluate(lead, NOW)
    held = {name for name, v in verdicts.items() if v.holds}
    assert {"hot_leads", "moderately_engaged"} <= held and not {"inactive", "highly_engaged"} & held
    assert verdicts["hot_leads"].reason == "score lead_score = 20 >= 20"
    assert verdicts["hot_leads"].deadline == NOW + 1, "exactly 20 points fall below 20 at once"

    nobody = ruleset.evaluate(Profile("n"), NOW)
    assert nobody["inactive"].holds and nobody["inactive"].deadline is None
    assert not any(nobody[name].holds for name in ("at_risk", "high_propensity", "high_predicted_value", "champions", "cluster_0"))

    scores = {"churn": 0.9, "purchase_propensity": 0.65, "ltv": 800.0, "rfm_recency": 5, "rfm_frequency": 4, "rfm_monetary": 4, "cluster": 3}
    scored = ruleset.evaluate(Profile("s", scores={k: {"v": v, "m": 1} for k, v in scores.items()}), NOW)
    assert {"at_risk", "high_propensity", "high_predicted_value", "champions", "cluster_3"} <= {n for n, v in scored.items() if v.holds}
    assert not scored["cluster_0"].holds
