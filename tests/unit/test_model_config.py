"""The ``models:`` section: defaults and turning parts off."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.models.config import DAY_MS, ModelsConfig


def test_a_model_turned_off_or_retimed_keeps_the_other_defaults() -> None:
    config = ModelsConfig.model_validate({"churn": {"enabled": False}, "ltv": {"horizon": "30d"}})
    assert config.enabled() == ["purchase_propensity", "ltv"]
    assert (config.churn.horizon, config.purchase_propensity.horizon, config.ltv.horizon) == (30 * DAY_MS, 14 * DAY_MS, 30 * DAY_MS)
    assert ModelsConfig.model_validate({}).enabled() == ["churn", "purchase_propensity", "ltv"]


def test_unknown_keys_suggest_the_intended_one() -> None:
    with pytest.raises(ValidationError, match="did you mean 'horizon'"):
        ModelsConfig.model_validate({"churn": {"horizn": "7d"}})
