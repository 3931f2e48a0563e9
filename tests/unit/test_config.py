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
    assert [(r.kind, r.name, r.last4) for r in s.static_keys] == [("write", "env", "a"), ("write", "env", "b")]


def test_secret_settings_never_show_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "app")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "kafka-pass-123")
    monkeypatch.setenv("SEGSTREAM_API_KEYS", "ops:admin:api-secret-123")
    monkeypatch.setenv("SEGSTREAM_WRITE_KEYS", "web:write-secret-123")
    s = Settings()
    shown = repr(s) + str(s.model_dump())
    for secret in ("kafka-pass-123", "api-secret-123", "write-secret-123"):
        assert secret not in shown
    assert set(s.secrets) >= {"kafka-pass-123", "api-secret-123", "write-secret-123"}
    monkeypatch.setenv("SEGSTREAM_API_KEYS", "ops:owner:api-secret-123")
    with pytest.raises(ValueError) as bad:
        Settings()
    assert "scope must be read or admin" in str(bad.value) and "api-secret-123" not in str(bad.value)


@pytest.mark.parametrize(
    "env, says",
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, "have no effect with KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
        ({"KAFKA_SSL_CA_FILE": "/etc/hostname"}, "set it to SSL or SASL_SSL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/no/such/ca.pem"}, "KAFKA_SSL_CA_FILE=/no/such/ca.pem: no such file"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "/etc/hostname"}, "go together"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_kafka_security_mistakes_say_what_to_set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=says):
        Settings()


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [f.validation_alias for f in Settings.model_fields.values() if f"`{f.validation_alias}`" not in text]
    assert not missing, f"README lacks: {missing}"


def test_the_cli_reports_bad_configuration_without_a_traceback_or_the_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stream.cli import main

    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "topsecret-123")
    assert main(["keys", "list"]) == 2
    err = capsys.readouterr().err
    assert "configuration in the environment is invalid" in err and "KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in err
    assert "topsecret-123" not in err and "Traceback" not in err
