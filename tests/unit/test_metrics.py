"""Exposition format, histograms, lag, worker metrics, JSON logs and health routes — no services."""

from __future__ import annotations

import asyncio
import io
import time
import logging
from types import SimpleNamespace
from typing import NamedTuple

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp import web

from stream.auth.redact import mask_secrets_in_logs
from stream.config import Settings, configure_logging
from stream.observability.exposition import Histogram, Registry, counter_family, number, parse_samples
from stream.observability.health import add_health_routes
from stream.observability.lag import consumer_offsets, partition_lag
from stream.observability.logs import JsonFormatter
from stream.observability.worker import WorkerMetrics


def test_exposition_has_help_type_and_escaped_labels() -> None:
    registry = Registry()
    counter = registry.counter("segstream_x_total", "Things.", ("reason",))
    counter.inc(1, 'a"b\\c\nd')
    counter.inc(2, 'a"b\\c\nd')
    gauge = registry.gauge("segstream_g", "A gauge.")
    gauge.set(0.25)
    text = registry.render()
    assert text.splitlines() == [
        "# HELP segstream_x_total Things.",
        "# TYPE segstream_x_total counter",
        'segstream_x_total{reason="a\\"b\\\\c\\nd"} 3',
        "# HELP segstream_g A gauge.",
        "# TYPE segstream_g gauge",
        "segstream_g 0.25",
    ]
    assert parse_samples(text)[("segstream_x_total", frozenset({("reason", 'a"b\\c\nd')}))] == 3


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    h = Histogram("segstream_h_seconds", "H.", (0.1, 1.0))
    for value in (0.1, 0.05, 0.5, 3.0):  # 0.1 falls in le="0.1": bounds are inclusive
        h.observe(value)
    samples = parse_samples("\n".join(h.lines()))
    assert samples[("segstream_h_seconds_bucket", frozenset({("le", "0.1")}))] == 2
    assert samples[("segstream_h_seconds_bucket", frozenset({("le", "1")}))] == 3
    assert samples[("segstream_h_seconds_bucket", frozenset({("le", "+Inf")}))] == 4
    assert samples[("segstream_h_seconds_count", frozenset())] == 4
    assert samples[("segstream_h_seconds_sum", frozenset())] == pytest.approx(3.65)


def test_numbers_and_families() -> None:
    assert [number(3.0), number(0.5), number(float("inf"))] == ["3", "0.5", "+Inf"]
    assert counter_family("segstream_c_total", "C.", "type", {"track": 2, "page": 1})[2:] == [
        'segstream_c_total{type="page"} 1',
        'segstream_c_total{type="track"} 2',
    ]


class TP(NamedTuple):
    topic: str
    partition: int


def test_lag_is_position_minus_committed() -> None:
    assert partition_lag({0: 10, 1: 7, 2: None, 3: 4}, {0: 10, 1: 2, 2: 5, 3: None}) == {0: 0, 1: 5, 2: 0, 3: 4}
    assert partition_lag({0: 3}, {0: 9}) == {0: 0}  # committed ahead of a reset position: never negative


def test_consumer_offsets_read_faust_and_aiokafka_state() -> None:
    tp, other = TP("ns.events", 2), TP("ns.other", 0)
    state = SimpleNamespace(position=42, has_valid_position=True)
    assignment = SimpleNamespace(state_value=lambda t: state if t is tp else None)
    aiokafka = SimpleNamespace(_subscription=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)))
    consumer = SimpleNamespace(
        assignment=lambda: {tp, other}, _thread=SimpleNamespace(_consumer=aiokafka), _committed_offset={tp: 40}
    )
    assert consumer_offsets(consumer, "ns.events") == ({2: 42}, {2: 40})
    assert consumer_offsets(SimpleNamespace(), "ns.events") == ({}, {})  # not started


def test_worker_metrics_observe_latency_timers_dead_letters_and_lag() -> None:
    metrics = WorkerMetrics()
    batch = [SimpleNamespace(message=SimpleNamespace(timestamp=time.time() - 0.3)) for _ in range(3)]
    metrics.processed(zip(batch, [30, 9, 1]))  # three records (two envelopes) holding 40 events
    metrics.dead_lettered({"dead_letter:too_late": 2})
    metrics.timer_decided(1_000, 1_120)
    metrics.timer_decided(5_000, 1_120)  # deadline not reached: not a timer firing
    metrics.timer_decided(None, 1_120)
    metrics.consumer([0, 1], {0: 12, 1: None}, {0: 10, 1: 3})
    samples = parse_samples(metrics.registry.render())
    assert samples[("segstream_worker_events_total", frozenset())] == 40
    assert samples[("segstream_processing_latency_seconds_bucket", frozenset({("le", "0.25")}))] == 0
    assert samples[("segstream_processing_latency_seconds_bucket", frozenset({("le", "0.5")}))] == 40
    assert samples[("segstream_worker_dead_letters_total", frozenset({("reason", "too_late")}))] == 2
    assert samples[("segstream_timer_lateness_seconds_count", frozenset())] == 1
    assert samples[("segstream_timer_lateness_seconds_sum", frozenset())] == pytest.approx(0.12)
    assert samples[("segstream_consumer_lag", frozenset({("partition", "0")}))] == 2
    assert samples[("segstream_consumer_lag", frozenset({("partition", "1")}))] == 0
    assert samples[("segstream_worker_partitions", frozenset())] == 2
    metrics.consumer([], {}, {})  # partitions revoked: their gauges go
    assert not any(name == "segstream_consumer_lag" for name, _ in parse_samples(metrics.registry.render()))


def test_json_log_lines_carry_fields_and_mask_secrets() -> None:
    mask_secrets_in_logs(["hunter2-secret"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.metrics.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("connecting with %s", "hunter2-secret", extra={"partition": 3, "url": "redis://:hunter2-secret@x"})
        try:
            raise ValueError("boom hunter2-secret")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "test.metrics.json" and first["ts"].endswith("Z")
    assert first["message"] == "connecting with ***" and first["partition"] == 3 and "hunter2" not in first["url"]
    assert second["message"] == "failed" and "ValueError" in second["exc_info"] and "hunter2" not in second["exc_info"]


def test_configure_logging_honours_the_json_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.root, "handlers", [])
    configure_logging(Settings(SEGSTREAM_LOG_FORMAT="json"))
    assert isinstance(logging.root.handlers[0].formatter, JsonFormatter)
    with pytest.raises(ValueError, match="SEGSTREAM_LOG_FORMAT"):
        Settings(SEGSTREAM_LOG_FORMAT="xml")


def test_health_routes_report_each_check() -> None:
    asyncio.run(_health_routes())


async def _health_routes() -> None:
    async def fine() -> str | None:
        return None

    async def broken() -> str | None:
        return "Redis does not answer PING"

    for checks, status in (({"a": fine}, 200), ({"a": fine, "redis": broken}, 503)):
        app = web.Application()
        add_health_routes(app, checks)
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/healthz")).status == 200
            answer = await client.get("/readyz")
            assert answer.status == status
            body = await answer.json()
            assert body["checks"]["a"] == "ok"
            if status == 503:
                assert body == {"status": "not ready", "checks": {"a": "ok", "redis": "Redis does not answer PING"}}
