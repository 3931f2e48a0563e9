"""Secrets masked in printed URLs and in every log line."""

from __future__ import annotations

import io
import logging

import pytest

from stream.auth.redact import MASK, mask, mask_secrets_in_logs, redact_url
from stream.config import Settings


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://127.0.0.1:16379/0", "redis://127.0.0.1:16379/0"),
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("rediss://app:p%40ss@redis:6380/0?ssl_ca_certs=/ca.pem", "rediss://app:***@redis:6380/0?ssl_ca_certs=/ca.pem"),
        ("rediss://redis/0?ssl_keyfile_password=x&ssl_certfile=/c.pem", "rediss://redis/0?ssl_keyfile_password=***&ssl_certfile=/c.pem"),
        ("redis://user@h/0", "redis://user@h/0"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_secret_values_of_the_settings() -> None:
    settings = Settings(
        redis_url="redis://app:r%40dis-pass@h:1/0",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="u",
        kafka_sasl_password="kafka-pass",
        api_keys=f"ops:admin:api-key-1,ro:read:sha256:{'a' * 64}",
        api_key="client-key",
        write_keys="web:write-key-1,bare-write-key",
    )
    assert set(settings.secrets) == {
        "r%40dis-pass", "r@dis-pass", "kafka-pass", "api-key-1", "client-key", "write-key-1", "bare-write-key"
    }


def test_mask_skips_short_values_and_prefers_the_longest() -> None:
    assert mask("a pw in secret-value-long", ["pw", "secret-value", "secret-value-long"]) == f"a pw in {MASK}"


def test_log_records_are_masked_whoever_logs(caplog: pytest.LogCaptureFixture) -> None:
    mask_secrets_in_logs(["hunter2-secret"])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        logger.warning("connecting with %s to %s", "hunter2-secret", "redis")
        logger.warning("plain hunter2-secret")
        try:
            raise RuntimeError("auth failed for hunter2-secret")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "hunter2-secret" not in text
    assert f"connecting with {MASK} to redis" in text and "auth failed for ***" in text
