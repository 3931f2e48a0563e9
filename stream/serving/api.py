"""The query API (``segstream api``): profiles, memberships, segments and their members.

JSON over the Redis state the worker maintains (key layout in
:mod:`stream.state.keys`). Every error is ``{"error": "..."}`` with its status.

Every endpoint but ``/health``, ``/healthz`` and ``/readyz`` needs an API key, ``Authorization: Bearer <key>``:
scope read for the reads (and ``/metrics``), scope admin for forgetting a
customer and deploying rules (``ADMIN_ENDPOINTS``). 401 without a valid key, 403
with too weak a scope (:mod:`stream.auth`).

=====================================  ==============================================================
``GET /health``                        ``{"status": "ok"}``; 503 when Redis does not answer a PING
``GET /v1/customers/{id}``             the profile (:meth:`stream.state.profile.Profile.public`)
``DELETE /v1/customers/{id}``          forget the customer (``?suppress=true``: and drop later events); 202; admin
``GET /v1/customers/{id}/segments``    ``{"customer_id", "segments": [{"segment", "entered_at"}]}``
``GET /v1/customers/{id}/recommendations``  the top ``n`` products not bought (query ``n``, 1..100, default
                                       10), see :func:`stream.models.reco.answer`
``GET /v1/segments``                   ``{"segments": [{"name", "description", "members", "source"}]}``
``GET /v1/segments/{name}/members``    ``{"segment", "members", "next_cursor"}``; query ``cursor``
                                       (the previous page's ``next_cursor``) and ``limit`` (1..1000,
                                       default 100)
``GET /v1/customers/{id}/segments/{s}/explain``  why the customer is (not) in segment s: the rule tree
                                       with each condition's verdict, values, events and deadline
``GET /v1/rules``                      the deployed rule version, its segments and backfill progress
``POST /v1/rules``                     deploy ``{"files": {"name.yaml": "<YAML>"}}`` (validated first); admin
``GET /v1/stats``                      the worker's counters, ``{name: int}``
``GET /v1/models``                     the newest model snapshot: versions, quality report, clusters
``GET /v1/analytics/overlap``          Jaccard matrix and over-segmentation warnings; query ``segments=a,b``
                                       (:mod:`stream.analytics.http`)
``GET /v1/analytics/performance``      the last saved treatment-vs-holdout report (``segstream analytics performance --save``)
``GET /v1/segments/{name}/sizes``      the segment's member count over time: ``{"segment", "from", "to", "step_s",
                                       "every_s", "points": [{"t", "at", "members", "min", "max"}]}``; query
                                       ``from``, ``to`` (ISO 8601 or epoch ms), ``step`` (s) (:mod:`stream.serving.sizes`)
``POST /v1/changes/token``             a short-lived token for the change stream (:mod:`stream.serving.live`)
``GET /v1/changes/stream``             server-sent events: every segment change as published; ``?token=`` or a key
``GET /dashboard``                     the dashboard page (static; it asks for a key); no key
``GET /metrics``                       Prometheus text: counters, segment sizes and model quality gauges
``GET /healthz``, ``GET /readyz``      liveness, and readiness (Redis and Kafka answer); no key
=====================================  ==============================================================

Customer ids and segment names are single path segments: percent-encode them
(``/`` as ``%2F``), as :class:`stream.client.Client` does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from redis.exceptions import RedisError

from stream.heap import tune_gc
from stream.analytics.http import overlap_handler, performance_handler
from stream.auth.access import api_access
from stream.auth.errors import AccessDenied
from stream.auth.keystore import KeyRing, keyring
from stream.config import Settings, configure_logging
from stream.rules import RuleError, Segment
from stream.rules.loader import RULE_FILE_PATTERNS
from stream.state.rulestore import RuleWatcher, deploy, open_rules
from stream.state.backfills import BackfillProgress
from stream.state.store import read_stored
from stream.kafka import AsyncProducer, KafkaUnavailable
from stream.models import reco
from stream.models.report import metrics_lines
from stream.observability.exposition import PROMETHEUS_TEXT, gauge_family, label_value, render_lines
from stream.observability.health import HEALTH_PATHS, Check, add_health_routes, kafka_check, redis_check
from stream.output.deletions import forget_request
from stream.serving import dashboard, live, sizes
from stream.serving.openapi import openapi_route
from stream.state import keys, modelstore
from stream.state.profile import Profile, iso, now_ms

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ENDPOINTS = (
    "/health, /v1/customers/{id}[/segments[/{segment}/explain]|/recommendations], /v1/segments[/{name}/members], /v1/rules, /v1/stats, "
    "/v1/models, /v1/analytics/overlap, /v1/analytics/performance, /v1/segments/{name}/sizes, /v1/changes/token, /v1/changes/stream, /dashboard, "
    "/metrics, /healthz, /readyz"
)
#: Paths anybody may call, without an API key.
#: (The change stream checks its own token or key: browsers' EventSource cannot send headers.)
PUBLIC_PATHS = frozenset({"/health", live.STREAM_PATH}) | HEALTH_PATHS | dashboard.PATHS
#: Endpoints (method, route) that need an API key of scope admin; every other one needs scope read.
ADMIN_ENDPOINTS = frozenset({("DELETE", "/v1/customers/{id}"), ("POST", "/v1/rules")})
#: Longest chain of identity merges a lookup follows.
MAX_REDIRECTS = 8
#: Seconds to wait for Redis to connect or answer before a request fails with 503.
REDIS_TIMEOUT_S = 5.0


class _HttpError(Exception):
    """An error answer: status and a message telling the caller what went wrong."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type="application/json")


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as JSON: our own errors, unknown paths, wrong methods, Redis outages."""
    try:
        return await handler(request)
    except _HttpError as exc:
        return _json({"error": str(exc)}, exc.status, headers=exc.headers)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"method {request.method} is not allowed on {request.path}; use {allowed}"
        return _json({"error": message}, 405, headers={"Allow": allowed})
    except web.HTTPNotFound:
        return _json({"error": f"no endpoint at {request.path}; the API serves {ENDPOINTS}"}, 404)
    except web.HTTPException as exc:
        return _json({"error": exc.reason}, exc.status)
    except RedisError as exc:
        return _json({"error": f"Redis is unavailable ({exc}); retry once it answers again"}, 503)


def _authenticate(ring: KeyRing) -> Middleware:
    """Middleware: the request's bearer key must exist, be active and have the scope its endpoint needs."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        needed = "admin" if (request.method, route) in ADMIN_ENDPOINTS else "read"
        try:
            key = api_access(ring.keys, ring.loaded, request.headers.get("Authorization"), needed, f"{request.method} {route}")
        except AccessDenied as exc:
            log.info("refused %s %s from %s: %s", request.method, route, request.remote, exc.reason)
            challenge = {401: 'Bearer realm="segstream"', 403: 'Bearer realm="segstream", error="insufficient_scope"'}
            headers = {"WWW-Authenticate": challenge[exc.status]} if exc.status in challenge else None
            raise _HttpError(exc.status, exc.message, headers) from None
        if needed == "admin":
            log.info("API key %r (%s) calls %s %s", key.name, key.id, request.method, route)
        return await handler(request)

    return authenticate


class EventSink(Protocol):
    """Where the API writes forget requests: the events topic (an :class:`stream.kafka.AsyncProducer`)."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...


class _Handlers:
    """The endpoints, bound to one Redis client, namespace and rule set."""

    def __init__(self, settings: Settings, redis: aioredis.Redis, rules: RuleWatcher, producer: EventSink | None) -> None:
        self.ns = settings.namespace
        self.state_dir = settings.state_dir
        self.redis = redis
        self.rules = rules
        self.rules_partitions = settings.partitions
        self.events_topic = settings.events_topic
        self.producer = producer
        self.snapshots = modelstore.SnapshotFollower(redis, self.ns)
        self.sizes_policy = sizes.Policy.of(settings)

    async def forget(self, request: web.Request) -> web.Response:
        customer_id = request.match_info["id"]
        suppress = request.query.get("suppress", "false").lower() in ("1", "true", "yes")
        if self.producer is None:
            raise _HttpError(503, "this API has no Kafka producer; use `segstream forget ID`")
        record = forget_request(customer_id, now_ms(), suppress)
        try:
            await self.producer.send(self.events_topic, customer_id.encode(), orjson.dumps(record))
        except KafkaUnavailable as exc:
            raise _HttpError(503, f"Kafka did not accept the request ({exc}); retry") from None
        body = {"customer_id": customer_id, "status": "accepted", "suppress": suppress}
        return _json({**body, "detail": "the owning worker erases the profile, exits its segments and publishes a deletion record"}, 202)

    @property
    def segments(self) -> dict[str, Segment]:
        return dict(sorted(self.rules.ruleset.segments.items()))

    async def health(self, request: web.Request) -> web.Response:
        try:
            await self.redis.ping()
        except RedisError as exc:
            return _json({"status": "unavailable", "error": f"Redis does not answer PING: {exc}"}, 503)
        return _json({"status": "ok"})

    async def customer(self, request: web.Request) -> web.Response:
        profile = await self._profile(request.match_info["id"])
        return _json(profile.public(self.rules.ruleset.points_at(profile, now_ms())))

    async def customer_segments(self, request: web.Request) -> web.Response:
        profile = await self._profile(request.match_info["id"])
        segments = [{"segment": name, "entered_at": iso(at)} for name, at in sorted(profile.memberships.items())]
        return _json({"customer_id": profile.customer_id, "segments": segments})

    async def recommendations(self, request: web.Request) -> web.Response:
        try:
            n = reco.count(request.query.get("n"))
        except ValueError as exc:
            raise _HttpError(400, str(exc)) from None
        profile = await self._profile(request.match_info["id"])
        await self.snapshots.refresh()
        models = self.rules.ruleset.models
        recommender = reco.recommender_of(self.snapshots.current)
        if models is None or models.recommender() is None or recommender is None:
            raise _HttpError(404, reco.NOT_READY)
        return _json(reco.answer(recommender, profile, n, models))

    async def member_counts(self) -> list[int]:
        """Members of each segment of :attr:`segments`, in order (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for name in self.segments:
            pipe.zcard(keys.segment(self.ns, name))
        return await pipe.execute()

    async def segment_list(self, request: web.Request) -> web.Response:
        counts = await self.member_counts()
        return _json(
            {
                "segments": [
                    {
                        "name": name,
                        "description": s.description or None,
                        "members": count,
                        "source": None if s.source is None else s.source.name,
                    }
                    for (name, s), count in zip(self.segments.items(), counts)
                ]
            }
        )

    async def members(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.segments:
            raise _HttpError(404, f"segment {name!r} is not in the rules; GET /v1/segments lists them")
        limit = _limit(request.query.get("limit"))
        cursor = request.query.get("cursor")
        start = b"(" + cursor.encode() if cursor else b"-"
        found = await self.redis.zrangebylex(keys.segment(self.ns, name), start, b"+", start=0, num=limit + 1)
        page = [m.decode() for m in found[:limit]]
        next_cursor = page[-1] if len(found) > limit else None
        return _json({"segment": name, "members": page, "next_cursor": next_cursor})

    async def segment_sizes(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.segments:
            raise _HttpError(404, f"segment {name!r} is not in the rules; GET /v1/segments lists them")
        every = self.sizes_policy.every_ms
        try:
            start, end, step = sizes.parse_range(request.query, now_ms(), every)
        except ValueError as exc:
            raise _HttpError(400, str(exc)) from None
        points = sizes.downsample(await sizes.read(self.redis, self.ns, name, start, end), start, end, step)
        body = {"segment": name, "from": iso(start), "to": iso(end), "step_s": step / 1000, "every_s": every / 1000}
        return _json({**body, "points": [{**p, "at": iso(p["t"])} for p in points]})

    async def sampling(self) -> AsyncIterator[None]:
        """Record every segment's size each ``SEGSTREAM_SIZES_EVERY`` while the app runs: for ``cleanup_ctx``."""

        async def counts() -> dict[str, int]:
            names = list(self.segments)  # taken with the counts, before any await: one rule version
            return dict(zip(names, await self.member_counts()))

        task = asyncio.create_task(sizes.sample_forever(self.redis, self.ns, counts, self.sizes_policy, now_ms))
        yield
        task.cancel()

    async def explain(self, request: web.Request) -> web.Response:
        name = request.match_info["segment"]
        if name not in self.rules.ruleset.segments:
            raise _HttpError(404, f"segment {name!r} is not in the rules; GET /v1/segments lists them")
        profile = await self._profile(request.match_info["id"])
        explained = self.rules.ruleset.explain(profile, now_ms(), name)
        return _json({"customer_id": profile.customer_id, "member": name in profile.memberships, **explained})

    async def rules_status(self, request: web.Request) -> web.Response:
        version = self.rules.version
        progress = BackfillProgress.from_fields(await self.redis.hgetall(keys.backfill(self.ns, version)))
        return _json(
            {
                "version": version,
                "segments": sorted(self.rules.ruleset.segments),
                "backfill": {
                    "partitions_done": sorted(progress.done),
                    "partitions": self.rules_partitions,
                    "customers_evaluated": progress.evaluated,
                },
            }
        )

    async def deploy_rules(self, request: web.Request) -> web.Response:
        """Validate and deploy ``{"files": {name: YAML text}}``, like ``segstream rules deploy``."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise _HttpError(400, f"body is not valid JSON: {exc}") from None
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, dict) or not files or not all(isinstance(t, str) for t in files.values()):
            raise _HttpError(400, 'body must be {"files": {"<name>.yaml": "<rule file text>", ...}} with at least one file')
        for name in files:
            plain = Path(name).name == name and "\0" not in name and len(name.encode()) <= 255  # what a file system takes
            if not plain or not any(Path(name).match(p) for p in RULE_FILE_PATTERNS):
                raise _HttpError(400, f"file name {name[:80]!r} must be a plain name (at most 255 bytes) ending in .yaml or .yml")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.state_dir, prefix="deploy-") as tmp:
            for name, text in files.items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            try:
                ruleset, changed = await deploy(self.redis, self.ns, Path(tmp), now_ms())
            except RuleError as exc:
                raise _HttpError(400, f"not deployed: {str(exc).replace(tmp + '/', '')}") from None
        log.info("deployed rules version %s over HTTP (changed: %s)", ruleset.version, changed)
        return _json({"version": ruleset.version, "deployed": changed, "segments": sorted(ruleset.segments)})

    async def stats(self, request: web.Request) -> web.Response:
        counters = await self.redis.hgetall(keys.stats(self.ns))
        return _json({name.decode(): int(value) for name, value in counters.items()})

    async def models(self, request: web.Request) -> web.Response:
        info = await modelstore.load_info(self.redis, self.ns)
        if info is None:
            raise _HttpError(
                404, "no model snapshot yet: the trainer publishes one once workers sent training records (rules need 'models:')"
            )
        return _json(info)

    async def metrics(self, request: web.Request) -> web.Response:
        counters = await self.redis.hgetall(keys.stats(self.ns))
        lines = counter_lines({name.decode(): int(value) for name, value in counters.items()})
        sizes = dict(zip(self.segments, await self.member_counts()))
        lines += gauge_family("segstream_segment_members", "Current members of the segment (its member set in Redis).", "segment", sizes)
        info = await modelstore.load_info(self.redis, self.ns)
        if info is not None:
            lines += metrics_lines(info["report"], self.ns)
        return web.Response(text=render_lines(lines), headers={"Content-Type": PROMETHEUS_TEXT})

    async def _profile(self, customer_id: str) -> Profile:
        """The profile of ``customer_id``, following identity merges to the surviving profile."""
        wanted = customer_id
        for _ in range(MAX_REDIRECTS):
            profile = read_stored(await self.redis.get(keys.profile(self.ns, customer_id)))
            if profile is None:
                raise _HttpError(404, f"customer {wanted!r} not found")
            if profile.forgotten is not None:
                raise _HttpError(404, f"customer {wanted!r} was forgotten at {iso(profile.forgotten)}")
            if profile.merged_into is None:
                return profile
            customer_id = profile.merged_into
        raise _HttpError(500, f"customer {wanted!r}: more than {MAX_REDIRECTS} merges in a chain; report this")


def counter_lines(counters: dict[str, int]) -> list[str]:
    """The worker's counters as Prometheus text lines (``dead_letter:<reason>`` becomes a ``reason`` label)."""
    lines = [
        "# HELP segstream_events_total Events applied by the workers.",
        "# TYPE segstream_events_total counter",
        f"segstream_events_total {counters.get('events', 0)}",
        "# HELP segstream_changes_total Segment changes published.",
        "# TYPE segstream_changes_total counter",
        f"segstream_changes_total {counters.get('changes', 0)}",
        "# HELP segstream_training_records_total Training records published to the trainer.",
        "# TYPE segstream_training_records_total counter",
        f"segstream_training_records_total {counters.get('training_records', 0)}",
        "# HELP segstream_dead_letters_total Records sent to the dead-letter topic, by reason.",
        "# TYPE segstream_dead_letters_total counter",
    ]
    for name, value in sorted(counters.items()):
        if name.startswith("dead_letter:"):
            lines.append(f'segstream_dead_letters_total{{reason="{name.partition(":")[2]}"}} {value}')
    lines += [
        "# HELP segstream_missing_fields_total Events without a critical field (SEGSTREAM_CRITICAL_FIELDS).",
        "# TYPE segstream_missing_fields_total counter",
    ]
    for name, value in sorted(counters.items()):
        if name.startswith("missing:"):
            event, _, path = name[len("missing:") :].rpartition(":")
            lines.append(f'segstream_missing_fields_total{{event="{label_value(event)}",field="{label_value(path)}"}} {value}')
    return lines


def _limit(raw: str | None) -> int:
    """The ``limit`` query parameter, checked."""
    if raw is None:
        return DEFAULT_LIMIT
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT:
        return int(raw)
    raise _HttpError(400, f"query parameter 'limit' must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")


def create_app(
    settings: Settings,
    redis_client: aioredis.Redis,
    rules: RuleWatcher,
    producer: EventSink | None = None,
    keys: KeyRing | None = None,
    checks: Mapping[str, Check] | None = None,
    hub: live.ChangeHub | None = None,
) -> web.Application:
    """The API as an aiohttp application; ``redis_client`` must use ``decode_responses=False``.

    ``producer`` writes forget requests (without it ``DELETE`` answers 503).
    ``keys``: the API keys accepted; default: the environment's and the
    namespace's in Redis, re-read every ``SEGSTREAM_KEYS_REFRESH`` s while the app
    runs. ``checks`` decide ``/readyz`` (default: Redis answers). ``hub`` fans
    changes out to ``/v1/changes/stream`` (default: one nothing feeds). The app
    samples segment sizes while it runs. The caller owns ``redis_client`` and
    ``producer`` and closes them.
    """
    h = _Handlers(settings, redis_client, rules, producer)
    ring = keys if keys is not None else keyring(settings, redis_client)
    app = web.Application(middlewares=[_json_errors, _authenticate(ring)])
    app.cleanup_ctx.append(lambda _app: ring.serving())
    app.cleanup_ctx.append(lambda _app: h.sampling())
    app.router.add_get("/health", h.health)
    add_health_routes(app, checks if checks is not None else {"redis": redis_check(redis_client)})
    # ``[^/]+`` rather than aiohttp's default, which refuses braces inside ids.
    app.router.add_get("/v1/customers/{id:[^/]+}", h.customer)
    app.router.add_delete("/v1/customers/{id:[^/]+}", h.forget)
    app.router.add_get("/v1/customers/{id:[^/]+}/segments", h.customer_segments)
    app.router.add_get("/v1/customers/{id:[^/]+}/recommendations", h.recommendations)
    app.router.add_get("/v1/segments", h.segment_list)
    app.router.add_get("/v1/segments/{name:[^/]+}/members", h.members)
    app.router.add_get("/v1/customers/{id:[^/]+}/segments/{segment:[^/]+}/explain", h.explain)
    app.router.add_get("/v1/rules", h.rules_status)
    app.router.add_post("/v1/rules", h.deploy_rules)
    app.router.add_get("/v1/stats", h.stats)
    app.router.add_get("/v1/models", h.models)
    app.router.add_get("/v1/analytics/overlap", overlap_handler(settings, redis_client, lambda: rules.ruleset))
    app.router.add_get("/v1/analytics/performance", performance_handler(redis_client, settings.namespace))
    app.router.add_get("/v1/segments/{name:[^/]+}/sizes", h.segment_sizes)
    live.add_routes(app, hub if hub is not None else live.ChangeHub(settings.live_queue), ring, settings)
    dashboard.add_routes(app)
    app.router.add_get("/metrics", h.metrics)
    app.router.add_get("/openapi.json", openapi_route(DEFAULT_LIMIT, MAX_LIMIT))
    return app


def run(settings: Settings) -> int:
    """``segstream api``: serve until SIGTERM/SIGINT; refuses to start on bad rules."""
    configure_logging(settings)

    async def app() -> web.Application:
        client = aioredis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        rules = await open_rules(settings, client, now_ms())
        producer = AsyncProducer(settings)
        checks = {"redis": redis_check(client), "kafka": kafka_check(settings)}
        hub = live.ChangeHub(settings.live_queue)
        application = create_app(settings, client, rules, producer, checks=checks, hub=hub)
        application.cleanup_ctx.append(lambda _app: live.kafka_feed(settings, hub))

        async def follow_rules(_: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(_follow(rules))
            yield
            task.cancel()
            producer.close()
            await client.aclose()

        application.cleanup_ctx.append(follow_rules)
        return application

    try:
        quiet = settings.log_format == "json"  # aiohttp's banner is not a JSON line
        application = app()
        tune_gc()
        web.run_app(application, host=settings.api_host, port=settings.api_port, print=None if quiet else print)
    except RuleError as exc:
        print(f"segstream api: refusing to start, the rules are invalid:\n{exc}", file=sys.stderr)
        return 2
    return 0


async def _follow(rules: RuleWatcher) -> None:
    """Pick up newly deployed rule sets every second."""
    while True:
        try:
            await rules.refresh()
        except (RedisError, RuleError) as exc:
            log.warning("cannot load the deployed rules (%s); keeping version %s", exc, rules.version)
        await asyncio.sleep(1.0)
