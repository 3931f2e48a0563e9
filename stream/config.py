"""All configuration in one place, read from environment variables.

Every setting has a documented default; the README lists them. Kafka and Redis
locations use the conventional names ``KAFKA_BOOTSTRAP`` and ``REDIS_URL``; the
rest are ``SEGSTREAM_*``.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.ingest.quality import parse_critical

LOCAL_KAFKA = "127.0.0.1:19092"
LOCAL_REDIS = "redis://127.0.0.1:16379/0"
DEFAULT_NORMALIZE = "normalize.yaml"
DEFAULT_ENRICHMENT = "enrichment.yaml"


class Settings(BaseSettings):
    """segstream settings; construct with ``Settings()`` to read the environment."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    kafka_bootstrap: str = Field(LOCAL_KAFKA, validation_alias="KAFKA_BOOTSTRAP", description="Kafka bootstrap servers, comma-separated.")
    redis_url: str = Field(LOCAL_REDIS, validation_alias="REDIS_URL", description="Redis URL (redis://, rediss:// for TLS).")
    namespace: str = Field(
        "segstream",
        validation_alias="SEGSTREAM_NAMESPACE",
        description="Prefix of topic names, the consumer group and Redis keys.",
    )
    rules_dir: Path = Field(Path("rules"), validation_alias="SEGSTREAM_RULES", description="Directory (or file) of rule YAML files.")
    partitions: int = Field(8, ge=1, validation_alias="SEGSTREAM_PARTITIONS", description="Partitions of topics segstream creates.")
    replication_factor: int = Field(1, ge=1, validation_alias="SEGSTREAM_REPLICATION", description="Replication factor of topics segstream creates.")
    state_dir: Path = Field(Path(".segstream"), validation_alias="SEGSTREAM_STATE_DIR", description="Local services' data, logs and pid files; faust's data dir.")

    collector_host: str = Field("127.0.0.1", validation_alias="SEGSTREAM_COLLECTOR_HOST", description="Collector listen address.")
    collector_port: int = Field(8088, validation_alias="SEGSTREAM_COLLECTOR_PORT", description="Collector listen port.")
    write_keys: str = Field(
        "",
        validation_alias="SEGSTREAM_WRITE_KEYS",
        description="Comma-separated accepted write keys; empty accepts any non-empty key.",
    )
    normalize: str = Field(
        DEFAULT_NORMALIZE,
        validation_alias="SEGSTREAM_NORMALIZE",
        description="Normalization file the collector applies to every event (labels, currency, trait case, times); empty: none.",
    )
    critical_fields: str = Field(
        "Order Completed:properties.revenue,identify:traits.email",
        validation_alias="SEGSTREAM_CRITICAL_FIELDS",
        description="Comma-separated '<event>:<dotted path>' fields whose absence the worker counts (missing-data monitoring).",
    )
    enrichment: str = Field(
        DEFAULT_ENRICHMENT,
        validation_alias="SEGSTREAM_ENRICHMENT",
        description="Enrichment plug-ins file the worker runs after identify calls; empty: none.",
    )
    produce_timeout_s: float = Field(5.0, gt=0, validation_alias="SEGSTREAM_PRODUCE_TIMEOUT", description="Seconds the collector waits for Kafka's acknowledgement before answering 503.")

    api_host: str = Field("127.0.0.1", validation_alias="SEGSTREAM_API_HOST", description="Query API listen address.")
    api_port: int = Field(8089, validation_alias="SEGSTREAM_API_PORT", description="Query API listen port.")

    batch_max: int = Field(2000, ge=1, validation_alias="SEGSTREAM_BATCH_MAX", description="Most events a worker processes as one batch.")
    batch_within_s: float = Field(0.02, gt=0, validation_alias="SEGSTREAM_BATCH_WITHIN", description="Seconds a worker waits to fill a batch.")
    session_timeout_s: float = Field(8.0, gt=0, validation_alias="SEGSTREAM_SESSION_TIMEOUT", description="Consumer-group session timeout in seconds (a dead worker's partitions move after it).")
    fetch_max_wait_ms: int = Field(
        50,
        ge=1,
        validation_alias="SEGSTREAM_FETCH_MAX_WAIT_MS",
        description="Longest a worker's fetch waits at the broker for new events (latency bound).",
    )
    allowed_lateness_s: float = Field(
        3600.0,
        ge=0,
        validation_alias="SEGSTREAM_ALLOWED_LATENESS",
        description="Seconds an event may arrive after its event time and still count; later ones are dead-lettered (too_late).",
    )
    timer_tick_s: float = Field(0.1, gt=0, validation_alias="SEGSTREAM_TIMER_TICK", description="Seconds between timer checks (bounds how late a window exit fires).")
    history_max_events: int = Field(
        1000,
        ge=1,
        validation_alias="SEGSTREAM_HISTORY_MAX",
        description="Safety cap on events kept per customer inside the longest rule window.",
    )

    match_traits: str = Field(
        "email,phone",
        validation_alias="SEGSTREAM_MATCH_TRAITS",
        description="Comma-separated traits whose equal values merge customers (email lower-cased, phone in E.164); empty: none.",
    )
    pii_traits: str = Field(
        "email,phone,name,first_name,last_name,address,postal_code",
        validation_alias="SEGSTREAM_PII_TRAITS",
        description="Comma-separated traits whose values are masked in the reasons of published changes.",
    )
    pii_mode: Literal["hash", "drop"] = Field(
        "hash", validation_alias="SEGSTREAM_PII_MODE", description="How PII traits are masked: hash (sha256) or drop."
    )
    snapshot_every_s: float = Field(
        5.0,
        gt=0,
        validation_alias="SEGSTREAM_SNAPSHOT_EVERY",
        description="Seconds between model snapshots the trainer publishes (when it learned something).",
    )

    log_level: str = Field("INFO", validation_alias="SEGSTREAM_LOG_LEVEL", description="Log level of every process.")

    @field_validator("critical_fields")
    @classmethod
    def _critical(cls, value: str) -> str:
        parse_critical(value)
        return value

    @property
    def events_topic(self) -> str:
        return f"{self.namespace}.events"

    @property
    def changes_topic(self) -> str:
        return f"{self.namespace}.segment-changes"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.namespace}.dead-letter"

    @property
    def deletions_topic(self) -> str:
        return f"{self.namespace}.deletions"

    @property
    def training_topic(self) -> str:
        return f"{self.namespace}.training"

    @property
    def consumer_group(self) -> str:
        return f"{self.namespace}-worker"

    @property
    def matched_traits(self) -> tuple[str, ...]:
        return _names(self.match_traits)

    @property
    def pii(self) -> tuple[str, ...]:
        return _names(self.pii_traits)

    @cached_property
    def accepted_write_keys(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.write_keys.split(",") if k.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def configure_logging(settings: Settings) -> None:
    """Log to stderr at ``SEGSTREAM_LOG_LEVEL`` with timestamps and logger names."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
