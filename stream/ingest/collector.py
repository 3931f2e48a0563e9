"""The collector: Segment's HTTP Tracking API in front of the events topic (the I/O edge).

Endpoints, all ``POST``, body JSON whatever the ``Content-Type`` (analytics.js
sends ``text/plain``), optionally ``Content-Encoding: gzip``:

* ``/v1/track``, ``/v1/identify``, ``/v1/page``, ``/v1/screen``, ``/v1/group``,
  ``/v1/alias`` and analytics.js' one-letter ``/v1/t``, ``/v1/i``, ``/v1/p``,
  ``/v1/s``, ``/v1/g``, ``/v1/a``: one event, its type given by the path.
* ``/v1/batch``, ``/v1/b``, ``/v1/import``: ``{"batch": [...], "sentAt", "context",
  "integrations"}``; the batch's ``context``/``integrations`` fill in each event's.

The write key is the HTTP Basic username (``curl -u KEY:``), else ``writeKey`` in
the body. Accepted: the active write keys in Redis (``segstream keys add-write
SOURCE``, re-read every ``SEGSTREAM_KEYS_REFRESH`` s) and those of
``SEGSTREAM_WRITE_KEYS``. While no write key exists at all (and
``SEGSTREAM_OPEN_COLLECTOR`` is true, the default) any non-empty key is accepted,
for development. Browsers may send from the pages of ``SEGSTREAM_CORS_ORIGINS``
(default any; other origins get ``403``; :mod:`stream.ingest.browser`). Each write
key may send ``SEGSTREAM_RATE_LIMIT`` events/s (bucket ``SEGSTREAM_RATE_BURST``) to
this process; over that: 429 with ``Retry-After`` (see :mod:`stream.auth`). An open
collector limits nobody.

Answers, like Segment's: ``200 {"success": true}`` once Kafka acknowledged every
event; ``400`` for bad JSON or gzip and for refused events, listing each as
``{"index", "field", "message"}`` while the good events of the request are still
accepted (``"accepted": n``); ``401`` without a valid write key; ``413`` for a body
over 500 KB; ``429`` over the key's rate limit; ``503`` when Kafka does not
acknowledge or the keys could not be read yet (SDKs retry 429 and 5xx). Error
bodies also carry ``code`` and ``message``, which the Segment SDKs show in their
errors. ``GET /stats`` serves the counters (to a query-API key of scope read,
``Authorization: Bearer``) and ``GET /metrics`` the same in Prometheus text;
``GET /health`` answers ``{"status": "ok"}``, ``GET /healthz`` and ``GET /readyz``
liveness and readiness (Kafka and Redis answer; :mod:`stream.observability.health`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import sys
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from confluent_kafka import KafkaException

from stream.auth.access import api_access, write_access
from stream.auth.credentials import KeyRecord, KeySet
from stream.auth.errors import AccessDenied
from stream.auth.keystore import KeyRing, keyring
from stream.auth.ratelimit import RateLimiter
from stream.auth.redact import redact_url
from stream.config import DEFAULT_NORMALIZE, Settings, configure_logging
from stream.heap import tune_gc
from stream.ingest.browser import Cors
from stream.ingest.events import BATCH, MAX_REQUEST_BYTES, Outcome, Record, normalise
from stream.ingest.normalize import NormalizationError, Normalizer, load_normalization
from stream.ingest.openapi import openapi_route
from stream.ingest.sink import EnvelopeSink
from stream.kafka import AsyncProducer, KafkaUnavailable, ensure_topics
from stream.observability.exposition import PROMETHEUS_TEXT, counter_family, render_lines
from stream.observability.health import Check, add_health_routes, kafka_check, redis_check

log = logging.getLogger("stream.collector")

#: The endpoint paths under ``/v1/`` and the call type each takes (or a batch).
PATHS = {
    "track": "track",
    "t": "track",
    "identify": "identify",
    "i": "identify",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
    "batch": BATCH,
    "b": BATCH,
    "import": BATCH,
}
#: Seconds a 503 asks SDKs to wait before retrying.
RETRY_AFTER_S = 5
#: Seconds one attempt at creating the topics may take, and between attempts while Kafka is down.
TOPICS_TIMEOUT_S = 5.0
#: Seconds to wait for Redis (the keys) to connect or answer.
REDIS_TIMEOUT_S = 2.0

UNAVAILABLE = "event store unavailable, retry"
_SUCCESS = orjson.dumps({"success": True})


class EventSink(Protocol):
    """Where accepted events go: :class:`stream.kafka.AsyncProducer` or a test double."""

    async def send_many(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        """Produce the records and return once all are acknowledged, else raise ``KafkaUnavailable``."""


class Refused(Exception):
    """A request refused as a whole: its HTTP ``status``, counter ``reason``, what to do, and the ``events`` it held."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None, events: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers
        self.events = events


@dataclass
class Stats:
    """The collector's counters, served at ``GET /stats``: nothing refused goes uncounted."""

    requests: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    rejected_events: Counter[str] = field(default_factory=Counter)
    rejected_requests: Counter[str] = field(default_factory=Counter)
    normalization: Counter[str] = field(default_factory=Counter)

    def metrics(self) -> str:
        """The counters in Prometheus text (this process only: Prometheus sums collectors)."""
        lines = [
            "# HELP segstream_collector_requests_total HTTP requests to the event endpoints.",
            "# TYPE segstream_collector_requests_total counter",
            f"segstream_collector_requests_total {self.requests}",
        ]
        for name, label, values, help_ in (
            ("events", "type", self.accepted, "Events accepted (acknowledged by Kafka), by type."),
            ("source_events", "source", self.sources, "Events accepted, by source (write key)."),
            ("rejected_events", "reason", self.rejected_events, "Events refused, by reason."),
            ("rejected_requests", "reason", self.rejected_requests, "Requests refused, by reason."),
            ("normalization_notes", "kind", self.normalization, "Values left as sent by normalization, by kind."),
        ):
            lines += counter_family(f"segstream_collector_{name}_total", help_, label, values)
        return render_lines(lines)

    def public(self) -> dict[str, Any]:
        """The counters as JSON: accepted events by type and by source, refused events and requests by reason."""
        return {
            "requests": self.requests,
            "accepted": dict(self.accepted),
            "sources": dict(self.sources),
            "rejected_events": dict(self.rejected_events),
            "rejected_requests": dict(self.rejected_requests),
            "normalization_notes": dict(self.normalization),
        }


STATS = web.AppKey("stats", Stats)
KEYS = web.AppKey("keys", KeyRing)


@dataclass
class Gate:
    """Who may send events: the key ring, whether an empty one lets anybody in, the rate limiter and the allowed web origins."""

    keys: KeyRing
    open_when_empty: bool
    limiter: RateLimiter
    cors: Cors


def create_app(
    settings: Settings,
    producer: EventSink,
    normalizer: Normalizer | None = None,
    keys: KeyRing | None = None,
    checks: Mapping[str, Check] | None = None,
) -> web.Application:
    """The collector's aiohttp application, producing accepted events with ``producer``.

    With ``normalizer`` every accepted event is normalized before it is produced
    (see :mod:`stream.ingest.normalize`). ``keys`` are the write (and, for
    ``/stats``, API) keys accepted, re-read while the app runs; default: those of
    the environment only. ``checks`` decide ``/readyz`` (see
    :mod:`stream.observability.health`). Serve it with ``web.run_app`` or
    ``aiohttp.test_utils.TestServer``; the caller owns ``producer`` and closes it.
    """
    # Bodies are decompressed here, not by aiohttp, to answer bad gzip and
    # oversized bodies like Segment does.
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, handler_args={"auto_decompress": False})
    stats = app[STATS] = Stats()
    ring = app[KEYS] = keys if keys is not None else KeyRing(settings.static_keys)
    limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    gate = Gate(ring, settings.open_collector, limiter, Cors.parse(settings.cors_origins))
    app.cleanup_ctx.append(lambda _app: ring.serving())
    for path, kind in PATHS.items():
        app.router.add_post(f"/v1/{path}", partial(_collect, settings, producer, stats, normalizer, gate, kind))
        app.router.add_route("OPTIONS", f"/v1/{path}", gate.cors.preflight)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    app.router.add_get("/metrics", _metrics)
    add_health_routes(app, checks or {})
    app.router.add_get("/openapi.json", openapi_route(PATHS))
    app.on_response_prepare.append(gate.cors.allow_origin)
    return app


def run(settings: Settings) -> int:
    """``segstream collector``: serve until SIGTERM/SIGINT, then return 0.

    Starts even when Kafka is down: it creates the topics once Kafka answers and
    until then answers 503 to every event.
    """
    configure_logging(settings)
    try:
        normalizer = normalization(settings)
    except NormalizationError as exc:
        print(f"segstream collector: refusing to start, the normalization file is invalid:\n{exc}", file=sys.stderr)
        return 2
    producer = AsyncProducer(settings)
    redis_client = aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    checks = {"kafka": kafka_check(settings), "redis": redis_check(redis_client)}
    sink = EnvelopeSink(producer, settings.events_topic, settings.envelope_linger_ms / 1000, settings.produce_timeout_s)
    app = create_app(settings, sink, normalizer, keyring(settings, redis_client, partial(_announce, settings)), checks)
    app.cleanup_ctx.append(partial(_topics, settings))

    async def close(_: web.Application) -> None:
        await sink.drain()
        producer.close()
        await redis_client.aclose()

    app.on_cleanup.append(close)
    log.info(
        "collector on http://%s:%d/v1/ writing to %s at %s, write keys from %s",
        settings.collector_host,
        settings.collector_port,
        settings.events_topic,
        settings.kafka_bootstrap,
        redact_url(settings.redis_url),
    )
    tune_gc()
    web.run_app(app, host=settings.collector_host, port=settings.collector_port, access_log=None, print=None)
    return 0


def normalization(settings: Settings) -> Normalizer | None:
    """The normalizer of ``SEGSTREAM_NORMALIZE``; ``None`` when it is empty, or is the default file and that is absent."""
    if not settings.normalize:
        return None
    path = Path(settings.normalize)
    if not path.is_file() and settings.normalize == DEFAULT_NORMALIZE:
        log.info("no %s: events are not normalized (set SEGSTREAM_NORMALIZE to a file)", path)
        return None
    normalizer = load_normalization(path)
    log.info("normalizing events with %s", path)
    return normalizer


def _normalized(normalizer: Normalizer, outcome: Outcome, stats: Stats) -> None:
    for i, record in enumerate(outcome.records):
        result = normalizer.apply(orjson.loads(record.value))
        stats.normalization.update(note.kind for note in result.notes)
        outcome.records[i] = Record(record.type, record.key, orjson.dumps(result.record))


async def _collect(
    settings: Settings,
    producer: EventSink,
    stats: Stats,
    normalizer: Normalizer | None,
    gate: Gate,
    kind: str,
    request: web.Request,
) -> web.StreamResponse:
    received_at = time.time_ns() // 1_000_000
    stats.requests += 1
    try:
        data = await _body(request)
        body = _json_object(data)
        key = _authorise(request, body, gate)
        _limit(gate.limiter, key, _event_count(body, kind))
    except Refused as exc:
        stats.rejected_requests[exc.reason] += 1
        if exc.events:
            stats.rejected_events[exc.reason] += exc.events
        log.info("refused a request to %s from %s: %s", request.path, request.remote, exc.message)
        return _failure(exc.status, exc.reason, exc.message, headers=exc.headers)
    outcome = normalise(body, kind, received_at, len(data))
    if normalizer is not None:
        _normalized(normalizer, outcome, stats)
    if outcome.records:
        try:
            await producer.send_many((settings.events_topic, r.key, r.value) for r in outcome.records)
        except KafkaUnavailable as exc:
            _count_refused(stats, outcome)
            stats.rejected_events["kafka_unavailable"] += len(outcome.records)
            stats.rejected_requests["kafka_unavailable"] += 1
            log.warning("answering 503 to %s: %s", request.remote, exc)
            retry = {"Retry-After": str(RETRY_AFTER_S)}
            return _failure(503, "kafka_unavailable", UNAVAILABLE, extra={"error": UNAVAILABLE}, headers=retry)
        stats.accepted.update(r.type for r in outcome.records)
        stats.sources[key.name] += len(outcome.records)
    if not outcome.errors:
        return web.Response(body=_SUCCESS, content_type="application/json")
    _count_refused(stats, outcome)
    reason = outcome.errors[0].reason
    stats.rejected_requests[reason] += 1
    messages = [e.message for e in outcome.errors]
    log.info("refused %d event(s) from %s: %s", len(messages), request.remote, "; ".join(messages))
    more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
    extra = {"errors": [e.public() for e in outcome.errors], "accepted": len(outcome.records)}
    return _failure(400, reason, messages[0] + more, extra=extra)


async def _body(request: web.Request) -> bytes:
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding == "gzip":
        return _gunzip(data)
    if encoding not in ("", "identity"):
        raise Refused(415, "bad_encoding", f"Content-Encoding {encoding!r} is not supported: send gzip or no encoding")
    return data


def _gunzip(data: bytes) -> bytes:
    """Decompress every gzip member, refusing output over the request limit (gzip bombs)."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, MAX_REQUEST_BYTES + 1 - len(out))
        except zlib.error:
            raise Refused(400, "bad_gzip", "body is not valid gzip") from None
        if len(out) > MAX_REQUEST_BYTES:
            raise _too_large()
        if not inflater.eof:
            raise Refused(400, "bad_gzip", "body is not valid gzip (it ends early)")
        data = inflater.unused_data
    return bytes(out)


def _too_large() -> Refused:
    return Refused(413, "too_large", f"request body is over {MAX_REQUEST_BYTES} bytes (500 KB): send smaller batches")


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, "bad_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_json", f"body must be a JSON object, got a JSON {type(body).__name__}")
    return body


def _authorise(request: web.Request, body: dict[str, Any], gate: Gate) -> KeyRecord:
    """The record of the request's write key (Basic username, else ``writeKey``) from an allowed origin, else :class:`Refused`."""
    key = _basic_username(request.headers.get("Authorization")) or body.get("writeKey")
    try:
        gate.cors.check(request.headers.get("Origin"))
        return write_access(gate.keys.keys, gate.keys.loaded, gate.open_when_empty, key if isinstance(key, str) else None)
    except AccessDenied as exc:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 else None
        raise Refused(exc.status, exc.reason, exc.message, headers) from None


def _event_count(body: dict[str, Any], kind: str) -> int:
    """How many events a request holds (what the rate limit counts)."""
    if kind != BATCH:
        return 1
    batch = body.get("batch")
    return max(len(batch), 1) if isinstance(batch, list) else 1


def _limit(limiter: RateLimiter, key: KeyRecord, events: int) -> None:
    """Charge ``events`` to the key's bucket, else :class:`Refused` 429 saying when to retry.

    Keys of an open collector are not limited: anybody can send under a new one.
    """
    if key.origin == "open":
        return
    wait = limiter.admit(key.id, events)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise Refused(
            429,
            "rate_limited",
            f"write key ...{key.last4} of source {key.name!r} is over its rate limit of {limiter.rate:g} events/s "
            f"(burst {limiter.burst}): retry after {retry} s",
            {"Retry-After": str(retry)},
            events,
        )


def _basic_username(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError
        # Segment also accepts a key encoded without the colon.
        return base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
    except ValueError:  # bad base64 or UTF-8 too
        raise Refused(
            401, "bad_authorization", "Authorization must be Basic auth: the write key as username, the password empty"
        ) from None


def _count_refused(stats: Stats, outcome: Outcome) -> None:
    stats.rejected_events.update(e.reason for e in outcome.errors)


def _failure(
    status: int, code: str, message: str, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"success": False, "code": code, "message": message, **(extra or {})}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    return _refused_reader(request, "GET /stats") or web.json_response(request.app[STATS].public())


async def _metrics(request: web.Request) -> web.Response:
    refused = _refused_reader(request, "GET /metrics")
    return refused or web.Response(text=request.app[STATS].metrics(), headers={"Content-Type": PROMETHEUS_TEXT})


def _refused_reader(request: web.Request, endpoint: str) -> web.Response | None:
    """The refusal for a request without a query-API key of scope read (counted), else ``None``."""
    stats, ring = request.app[STATS], request.app[KEYS]
    try:
        api_access(ring.keys, ring.loaded, request.headers.get("Authorization"), "read", endpoint)
    except AccessDenied as exc:
        stats.rejected_requests[exc.reason] += 1
        return _failure(exc.status, exc.reason, exc.message, headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)
    return None


def _announce(settings: Settings, keys: KeySet) -> None:
    """Log which write keys are in force whenever they change, loudly when the collector is open."""
    if keys.any_of("write"):
        active = [r for r in keys.records if r.kind == "write" and r.active]
        log.info("write keys in force: %d, of sources %s", len(active), ", ".join(sorted({r.name for r in active})) or "none")
    elif settings.open_collector:
        log.warning(
            "the collector is OPEN: no write key exists (SEGSTREAM_WRITE_KEYS is empty, none in Redis), so any non-empty "
            "key is accepted. `segstream keys add-write SOURCE` creates one and closes it (SEGSTREAM_OPEN_COLLECTOR=false refuses all)"
        )
    else:
        log.warning("no write key exists and SEGSTREAM_OPEN_COLLECTOR=false: every event is refused until `segstream keys add-write SOURCE`")


async def _topics(settings: Settings, app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_ensure_topics(settings))
    yield
    task.cancel()


async def _ensure_topics(settings: Settings) -> None:
    """Create the topics, retrying in the background while Kafka does not answer."""
    while True:
        try:
            await asyncio.to_thread(ensure_topics, settings, TOPICS_TIMEOUT_S)
        except (KafkaException, KafkaUnavailable) as exc:
            log.warning(
                "Kafka at %s does not answer (%s): serving anyway, events get 503 until it does; retrying",
                settings.kafka_bootstrap,
                exc,
            )
            await asyncio.sleep(TOPICS_TIMEOUT_S)
        else:
            log.info("topic %s ready", settings.events_topic)
            return
