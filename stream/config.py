"""All configuration in one place, read from environment variables.

Every setting has a documented default; the README lists them. Kafka and Redis
use the conventional names ``KAFKA_BOOTSTRAP``, ``KAFKA_SECURITY_PROTOCOL``,
``KAFKA_SASL_*``, ``KAFKA_SSL_*`` and ``REDIS_URL``; the rest are ``SEGSTREAM_*``.
Secrets (passwords, keys) are ``SecretStr``: read them with :func:`reveal`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.auth.credentials import KeyRecord, parse_api_keys, parse_write_keys
from stream.auth.redact import mask_secrets_in_logs, secret_values
from stream.ingest.browser import Cors
from stream.ingest.quality import parse_critical
from stream.observability.logs import JsonFormatter
from stream.rules.durations import parse_duration

LOCAL_KAFKA = "127.0.0.1:19092"
LOCAL_REDIS = "redis://127.0.0.1:16379/0"
DEFAULT_NORMALIZE = "normalize.yaml"
DEFAULT_ENRICHMENT = "enrichment.yaml"


class Settings(BaseSettings):
    """segstream settings; construct with ``Settings()`` to read the environment."""

    # Inputs stay out of validation errors: they may be passwords or keys.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    kafka_bootstrap: str = Field(LOCAL_KAFKA, validation_alias="KAFKA_BOOTSTRAP", description="Kafka bootstrap servers, comma-separated.")
    redis_url: str = Field(
        LOCAL_REDIS,
        validation_alias="REDIS_URL",
        description="Redis URL: redis://[user:password@]host:port/db, rediss:// for TLS (CA and client certificate as query parameters, see Security).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        validation_alias="KAFKA_SECURITY_PROTOCOL",
        description="How every Kafka client connects: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", validation_alias="KAFKA_SASL_MECHANISM", description="SASL mechanism (SASL_* protocols): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    )
    kafka_sasl_username: str = Field("", validation_alias="KAFKA_SASL_USERNAME", description="SASL user name (SASL_* protocols).")
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), validation_alias="KAFKA_SASL_PASSWORD", description="SASL password (SASL_* protocols); never logged."
    )
    kafka_ssl_ca_file: str = Field(
        "", validation_alias="KAFKA_SSL_CA_FILE", description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); empty: the system's CAs."
    )
    kafka_ssl_cert_file: str = Field(
        "", validation_alias="KAFKA_SSL_CERT_FILE", description="PEM client certificate for mutual TLS (SSL, SASL_SSL); empty: none."
    )
    kafka_ssl_key_file: str = Field("", validation_alias="KAFKA_SSL_KEY_FILE", description="PEM private key of KAFKA_SSL_CERT_FILE.")
    kafka_ssl_key_password: SecretStr = Field(
        SecretStr(""), validation_alias="KAFKA_SSL_KEY_PASSWORD", description="Password of KAFKA_SSL_KEY_FILE, if it is encrypted; never logged."
    )
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
    write_keys: SecretStr = Field(
        SecretStr(""),
        validation_alias="SEGSTREAM_WRITE_KEYS",
        description="Comma-separated write keys accepted besides those in Redis (`segstream keys add-write`), each `KEY` or `SOURCE:KEY`.",
    )
    open_collector: bool = Field(
        True,
        validation_alias="SEGSTREAM_OPEN_COLLECTOR",
        description="While no write key exists at all (none here, none ever added in Redis), accept any non-empty key (development); false: refuse.",
    )
    rate_limit: float = Field(
        5000.0,
        ge=0,
        validation_alias="SEGSTREAM_RATE_LIMIT",
        description="Events per second one write key may send to one collector process (token bucket; not applied while the collector is open); 0: no limit.",
    )
    rate_burst: int = Field(
        25000, ge=1, validation_alias="SEGSTREAM_RATE_BURST", description="Events one write key may send at once (the bucket's size)."
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
    envelope_linger_ms: float = Field(
        5.0,
        ge=0,
        validation_alias="SEGSTREAM_ENVELOPE_LINGER_MS",
        description="Milliseconds the collector gathers concurrent requests' events into shared envelopes (one Kafka record per partition).",
    )

    # Browsers: which pages may send events (README, Pointing your SDKs at segstream).
    cors_origins: str = Field(
        "*",
        validation_alias="SEGSTREAM_CORS_ORIGINS",
        description="Origins whose web pages may send events to the collector (CORS), comma-separated like `https://shop.example`; `*`: any page (as Segment). Other origins are refused 403.",
    )

    api_host: str = Field("127.0.0.1", validation_alias="SEGSTREAM_API_HOST", description="Query API listen address.")
    api_port: int = Field(8089, validation_alias="SEGSTREAM_API_PORT", description="Query API listen port.")
    api_keys: SecretStr = Field(
        SecretStr(""),
        validation_alias="SEGSTREAM_API_KEYS",
        description="Comma-separated API keys accepted besides those in Redis (`segstream keys add-api`), each `NAME:SCOPE:KEY` or `NAME:SCOPE:sha256:HEX` (scope read or admin).",
    )
    api_key: SecretStr = Field(
        SecretStr(""), validation_alias="SEGSTREAM_API_KEY", description="The API key the Python client (`stream.client.Client`) sends; never logged."
    )
    keys_refresh_s: float = Field(
        1.0,
        gt=0,
        validation_alias="SEGSTREAM_KEYS_REFRESH",
        description="Seconds between reloads of the keys in Redis by the collector and the API (how fast additions and revocations apply).",
    )

    batch_max: int = Field(2000, ge=1, validation_alias="SEGSTREAM_BATCH_MAX", description="Most events a worker processes as one batch.")
    batch_within_s: float = Field(0.02, gt=0, validation_alias="SEGSTREAM_BATCH_WITHIN", description="Seconds a worker waits to fill a batch.")
    session_timeout_s: float = Field(8.0, gt=0, validation_alias="SEGSTREAM_SESSION_TIMEOUT", description="Consumer-group session timeout in seconds (a dead worker's partitions move after it).")
    stall_after_s: float = Field(
        15.0,
        gt=0,
        validation_alias="SEGSTREAM_STALL_AFTER",
        description="Seconds an assigned partition may hold waiting events that reach no agent before the worker seeks it back (then crashes if that fails).",
    )
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
    export_batch: int = Field(
        100_000,
        ge=1,
        validation_alias="SEGSTREAM_EXPORT_BATCH",
        description="Segment changes `segstream export` buffers before it writes Parquet files and commits (flush on size).",
    )
    export_flush_s: float = Field(
        60.0,
        gt=0,
        validation_alias="SEGSTREAM_EXPORT_FLUSH",
        description="Seconds `segstream export` holds buffered changes at most before writing them (flush on time).",
    )
    export_snapshot_every_s: float = Field(
        3600.0,
        gt=0,
        validation_alias="SEGSTREAM_EXPORT_SNAPSHOT_EVERY",
        description="Seconds between the profile snapshots `segstream export` writes (one at start, one at the end of --once).",
    )

    # Segment analytics: overlap and performance (README, Segment analytics).
    analytics_duplicate_jaccard: float = Field(
        0.9,
        gt=0,
        le=1,
        validation_alias="SEGSTREAM_ANALYTICS_DUPLICATE_JACCARD",
        description="Jaccard index from which two segments are flagged as near-duplicates (overlap analytics).",
    )
    analytics_subset_share: float = Field(
        0.95,
        gt=0,
        le=1,
        validation_alias="SEGSTREAM_ANALYTICS_SUBSET_SHARE",
        description="Share of a segment's members also in a larger one from which it is flagged as a subset of it.",
    )
    analytics_min_members: int = Field(
        100,
        ge=0,
        validation_alias="SEGSTREAM_ANALYTICS_MIN_MEMBERS",
        description="Segments with fewer members are flagged as too small to act on (empty ones as empty).",
    )
    analytics_max_segments: int = Field(
        50,
        ge=2,
        validation_alias="SEGSTREAM_ANALYTICS_MAX_SEGMENTS",
        description="Most segments one overlap request compares (N segments cost N(N-1)/2 ZINTERCARD calls).",
    )
    analytics_goal: str = Field(
        "Order Completed",
        min_length=1,
        validation_alias="SEGSTREAM_ANALYTICS_GOAL",
        description="Track event that counts as a conversion in segment performance.",
    )
    analytics_within: str = Field(
        "7d",
        validation_alias="SEGSTREAM_ANALYTICS_WITHIN",
        description="Window after entering a segment in which conversions, email opens and clicks and revenue count (a duration).",
    )
    analytics_confidence: float = Field(
        0.95,
        gt=0,
        lt=1,
        validation_alias="SEGSTREAM_ANALYTICS_CONFIDENCE",
        description="Confidence level of the intervals in segment performance.",
    )

    log_level: str = Field("INFO", validation_alias="SEGSTREAM_LOG_LEVEL", description="Log level of every process.")

    # Observability: logs, metrics and health endpoints (README, Observability).
    log_format: Literal["text", "json"] = Field(
        "text",
        validation_alias="SEGSTREAM_LOG_FORMAT",
        description="Log lines of every process: text, or json (one object per line: ts, level, logger, message, extra fields).",
    )
    worker_host: str = Field(
        "127.0.0.1", validation_alias="SEGSTREAM_WORKER_HOST", description="Listen address of the worker's /metrics, /healthz and /readyz."
    )
    worker_port: int = Field(
        8090,
        ge=0,
        validation_alias="SEGSTREAM_WORKER_PORT",
        description="Listen port of the worker's /metrics, /healthz and /readyz; 0: none (give each worker on one host its own).",
    )

    # Destinations: webhooks and audience sync (README, Destinations).
    destinations: str = Field(
        "destinations.yaml",
        validation_alias="SEGSTREAM_DESTINATIONS",
        description="Destinations file `segstream destinations` delivers segment changes to (webhooks, audience sync); `segstream run` starts it when the file exists.",
    )

    # Dashboard: segment sizes over time and the live change stream (README, Dashboard).
    sizes_every_s: float = Field(
        60.0, ge=1, validation_alias="SEGSTREAM_SIZES_EVERY", description="Seconds between the samples of every segment's member count the API records in Redis."
    )
    sizes_fine_s: float = Field(
        86400.0,
        ge=0,
        validation_alias="SEGSTREAM_SIZES_FINE",
        description="Seconds segment-size samples are kept at full resolution; older ones are thinned to one per SEGSTREAM_SIZES_COARSE.",
    )
    sizes_coarse_s: float = Field(
        3600.0, ge=1, validation_alias="SEGSTREAM_SIZES_COARSE", description="Seconds between the segment-size samples kept beyond SEGSTREAM_SIZES_FINE."
    )
    sizes_retention_s: float = Field(
        2_592_000.0, ge=1, validation_alias="SEGSTREAM_SIZES_RETENTION", description="Seconds segment-size samples are kept at all (default 30 days)."
    )
    live_token_ttl_s: float = Field(
        60.0,
        gt=0,
        validation_alias="SEGSTREAM_LIVE_TOKEN_TTL",
        description="Seconds a token for GET /v1/changes/stream (browsers' EventSource cannot send headers) may be used to connect.",
    )
    live_queue: int = Field(
        1000,
        ge=1,
        validation_alias="SEGSTREAM_LIVE_QUEUE",
        description="Changes buffered per client of GET /v1/changes/stream; a client that falls further behind skips changes (and is told how many).",
    )

    @field_validator("critical_fields")
    @classmethod
    def _critical(cls, value: str) -> str:
        parse_critical(value)
        return value

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, value: str) -> str:
        Cors.parse(value)
        return value

    @field_validator("analytics_within")
    @classmethod
    def _analytics_within(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("write_keys")
    @classmethod
    def _write_keys(cls, value: SecretStr) -> SecretStr:
        parse_write_keys(value.get_secret_value())
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> "Settings":
        """SASL needs a user and password; a client certificate needs its key; named files must exist."""
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and reveal(self.kafka_sasl_password)
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        sasl_set = self.kafka_sasl_username or reveal(self.kafka_sasl_password)
        if sasl_set and not self.kafka_security_protocol.startswith("SASL_"):
            raise ValueError(
                f"KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD have no effect with KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}: "
                "set it to SASL_SSL (or SASL_PLAINTEXT), or unset them"
            )
        tls_set = self.kafka_ssl_ca_file or self.kafka_ssl_cert_file or self.kafka_ssl_key_file
        if tls_set and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(
                f"KAFKA_SSL_* files have no effect with KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}: "
                "set it to SSL or SASL_SSL, or unset them"
            )
        if bool(self.kafka_ssl_cert_file) != bool(self.kafka_ssl_key_file):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together: set both for mutual TLS, or neither")
        for name, path in (
            ("KAFKA_SSL_CA_FILE", self.kafka_ssl_ca_file),
            ("KAFKA_SSL_CERT_FILE", self.kafka_ssl_cert_file),
            ("KAFKA_SSL_KEY_FILE", self.kafka_ssl_key_file),
        ):
            if path and not Path(path).is_file():
                raise ValueError(f"{name}={path}: no such file")
        return self

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

    @property
    def static_keys(self) -> list[KeyRecord]:
        """The write and API keys of ``SEGSTREAM_WRITE_KEYS`` and ``SEGSTREAM_API_KEYS`` (digests only)."""
        return parse_write_keys(reveal(self.write_keys)) + parse_api_keys(reveal(self.api_keys))

    @property
    def secrets(self) -> list[str]:
        """Every secret value in these settings, for masking in logs (:mod:`stream.auth.redact`)."""
        return secret_values(self)


def reveal(value: SecretStr | str) -> str:
    """The plain text of a secret setting (also when a test set it as a plain ``str``)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def environment(settings: Settings) -> dict[str, str]:
    """The environment variables that make a child process use ``settings`` (secrets in clear: pass them only to children)."""
    env = {}
    for name, spec in Settings.model_fields.items():
        value = getattr(settings, name)
        env[str(spec.validation_alias)] = reveal(value) if isinstance(value, SecretStr) else str(value)
    return env


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def configure_logging(settings: Settings) -> None:
    """Log to stderr at ``SEGSTREAM_LOG_LEVEL``, as text or JSON lines (``SEGSTREAM_LOG_FORMAT``), secrets masked."""
    mask_secrets_in_logs(settings.secrets)
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
