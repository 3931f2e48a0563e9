"""Fixtures for end-to-end tests against the real broker and redis-server.

``make test`` starts both (``segstream services up``) unless KAFKA_BOOTSTRAP and
REDIS_URL point at running ones. A test here never skips: when the services
cannot be reached it fails with a message saying how to start them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis
from pydantic import SecretStr

from stream.config import Settings
from stream.kafka import admin, ensure_topics
from tests.e2e.harness import E2E_API_KEY, ROOT, free_port

@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings from the environment, after checking Kafka and Redis answer; API key: the session's admin key."""
    os.environ["SEGSTREAM_API_KEY"] = E2E_API_KEY
    settings = Settings()
    hint = "start them with `segstream services up` (or run `make test`), or set KAFKA_BOOTSTRAP/REDIS_URL"
    try:
        redis.Redis.from_url(settings.redis_url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"redis-server at {settings.redis_url} does not answer ({exc}); {hint}", pytrace=False)
    try:
        admin(settings).list_topics(timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure here means no broker
        pytest.fail(f"Kafka at {settings.kafka_bootstrap} does not answer ({exc}); {hint}", pytrace=False)
    return settings


def make_settings(base: Settings, rules_dir: Path | None = None, **overrides: object) -> Settings:
    """A fresh namespace (topics, consumer group, Redis keys) with free ports, topics created.

    Its processes accept the session's admin API key (:data:`E2E_API_KEY`), which ``api_key`` holds.
    """
    update: dict[str, object] = dict(
        namespace=f"t{uuid.uuid4().hex[:10]}",
        rules_dir=rules_dir or ROOT / "rules",
        collector_port=free_port(),
        api_port=free_port(),
        partitions=4,
        api_keys=SecretStr(f"e2e:admin:{E2E_API_KEY}"),
        api_key=SecretStr(E2E_API_KEY),
    )
    settings = base.model_copy(update={**update, **overrides})
    ensure_topics(settings)
    return settings


@pytest.fixture
def settings(base_settings: Settings) -> Iterator[Settings]:
    """Per-test isolated settings."""
    yield make_settings(base_settings)
