"""Settings: environment names, defaults, and the README documenting every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "shop")
    monkeypatch.setenv("SEGSTREAM_WRITE_KEYS", " a, b ,,")
    s = Settings()
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert (s.events_topic, s.changes_topic, s.dead_letter_topic) == (
        "shop.events",
        "shop.segment-changes",
        "shop.dead-letter",
    )
    assert s.consumer_group == "shop-worker"
    assert s.accepted_write_keys == {"a", "b"}


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [f.validation_alias for f in Settings.model_fields.values() if f"`{f.validation_alias}`" not in text]
    assert not missing, f"README lacks: {missing}"
