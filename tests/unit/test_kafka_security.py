"""Kafka security settings mapped onto every client: librdkafka (producers, consumers, admin) and faust/aiokafka."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from stream.config import Settings
from stream.kafka import client_config, faust_credentials, producer_config, ssl_context
from tests.e2e.harness import tls_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A self-signed CA and a client certificate and key, as PEM files."""
    return tls_files(tmp_path_factory.mktemp("tls"))


def test_plaintext_by_default() -> None:
    settings = Settings(kafka_bootstrap="k1:9092,k2:9092")
    assert client_config(settings) == {"bootstrap.servers": "k1:9092,k2:9092", "security.protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_sasl_ssl_with_scram_and_mutual_tls(tls: dict[str, str]) -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="app",
        kafka_sasl_password="pw",
        kafka_ssl_ca_file=tls["ca"],
        kafka_ssl_cert_file=tls["client_cert"],
        kafka_ssl_key_file=tls["client_key"],
    )
    conf = client_config(settings, **{"group.id": "g"})
    assert conf == {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "app",
        "sasl.password": "pw",
        "ssl.ca.location": tls["ca"],
        "ssl.certificate.location": tls["client_cert"],
        "ssl.key.location": tls["client_key"],
        "group.id": "g",
    }
    assert producer_config(settings)["sasl.password"] == "pw" and producer_config(settings)["acks"] == "all"
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["sasl_plain_username"], auth["sasl_plain_password"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "app", "pw",
    )
    assert isinstance(auth["ssl_context"], ssl.SSLContext) and auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_has_no_tls() -> None:
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="app", kafka_sasl_password="pw")
    conf = client_config(settings)
    assert conf["security.protocol"] == "SASL_PLAINTEXT" and conf["sasl.mechanism"] == "PLAIN"
    assert not any(name.startswith("ssl.") for name in conf)
    auth = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert auth["security_protocol"] == "SASL_PLAINTEXT" and auth["ssl_context"] is None


def test_ssl_with_the_ca_file(tls: dict[str, str]) -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=tls["ca"])
    conf = client_config(settings)
    assert conf == {"bootstrap.servers": settings.kafka_bootstrap, "security.protocol": "SSL", "ssl.ca.location": tls["ca"]}
    auth = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert auth["security_protocol"] == "SSL"
    assert auth["ssl_context"].get_ca_certs()[0]["subject"] == ((("commonName", "test-ca"),),)


def test_ssl_without_a_ca_file_uses_the_system_cas() -> None:
    context = ssl_context(Settings(kafka_security_protocol="SSL"))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_faust_app_gets_the_credentials() -> None:
    from stream.worker.app import faust_app

    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="app", kafka_sasl_password="pw")
    app = faust_app(settings)
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)
    assert app.conf.broker_credentials.username == "app"


def test_every_kafka_client_is_configured_by_stream_kafka() -> None:
    """No engine module builds a librdkafka configuration of its own: security settings would miss it.

    ``stream/bench`` (the benchmark tool, run against local brokers) is not checked.
    """
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "stream").rglob("*.py")
        if path.name != "kafka.py"
        and "bench" not in path.relative_to(ROOT).parts
        and re.search(r"bootstrap\.servers|AIOKafka(Producer|Consumer)\(", path.read_text())
    ]
    assert offenders == []
