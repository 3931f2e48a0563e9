"""Imputation of missing traits (``models.imputation``): constants, population medians, or never matching."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream.models.config import ModelsConfig
from stream.models.features import features
from stream.models.learner import Learner
from stream.models.lifecycle import Modelling
from stream.models.records import OBSERVATION, TrainingRecord
from stream.rules import load_rules
from stream.state.profile import Profile
from stream.worker.step import advance

T = 1_800_000_000_000
RULES = """
segments:
  - {name: aged_25_34, condition: {trait: age, between: [25, 34]}}
  - {name: in_us, condition: {trait: country, eq: US}}
  - {name: high_income, condition: {trait: income, gte: 100000}}
models:
  min_examples: 3
  imputation: {age: median, country: {constant: US}, income: missing}
"""


def test_policies_parse_and_bad_ones_say_what_is_allowed() -> None:
    config = ModelsConfig.model_validate({"imputation": {"age": "median", "country": {"constant": "US"}, "income": "missing"}})
    assert config.median_traits() == ("age",) and config.constants() == {"country": "US"}
    with pytest.raises(ValidationError, match="median"):
        ModelsConfig.model_validate({"imputation": {"age": "average"}})


def test_the_learner_keeps_each_median_traits_population_median() -> None:
    config = ModelsConfig.model_validate({"min_examples": 3, "imputation": {"age": "median"}})
    learner = Learner(config, {}, {})
    for i, age in enumerate([20, 30, 40, 50, 60]):
        learner.learn(TrainingRecord(f"c{i}", OBSERVATION, i, {}, traits={"age": float(age)}))
    assert learner.snapshot(1).medians == {"age": 40.0}
    assert learner.report()["medians"]["age"]["observations"] == 5


def test_rules_and_features_read_imputed_values_only_where_the_trait_is_missing(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    rs = load_rules(tmp_path)
    assert rs.models is not None
    config = ModelsConfig.model_validate({"min_examples": 3, "imputation": {"age": "median"}})
    learner = Learner(config, {}, {})
    for i, age in enumerate([28.0, 30.0, 32.0]):
        learner.learn(TrainingRecord(f"c{i}", OBSERVATION, i, {}, traits={"age": age}))
    models = Modelling(rs.models, learner.snapshot(1))
    unknown, known = Profile("unknown"), Profile("known")
    identify = {"type": "identify", "traits": {"age": 61, "country": "NO"}}
    advance(unknown, [({"type": "track", "event": "Visit"}, T)], T, rs, rs.policy(100), models)
    advance(known, [(identify, T)], T, rs, rs.policy(100), models)
    assert sorted(unknown.memberships) == ["aged_25_34", "in_us"]  # median 30, constant US; income never matches
    assert sorted(known.memberships) == []  # their own values win
    assert features(unknown, T, rs.models, {})["trait.age"] == 30.0 and features(known, T, rs.models, {})["trait.age"] == 61.0
    [observation] = [r for r in advance(Profile("k2"), [(identify, T)], T, rs, rs.policy(100), models).training if r.kind == OBSERVATION]
    assert observation.traits == {"age": 61.0}  # what the trainer's medians learn from


def test_the_report_shows_the_medians() -> None:
    from stream.models.report import format_report

    config = ModelsConfig.model_validate({"min_examples": 1, "imputation": {"age": "median"}})
    learner = Learner(config, {}, {})
    learner.learn(TrainingRecord("c", OBSERVATION, 0, {}, traits={"age": 33.0}))
    assert "imputation medians: age 33 (1 obs.)" in format_report(learner.report())
