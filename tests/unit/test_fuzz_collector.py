"""Hostile input against the collector, served in-process with a recording producer (no Kafka).

Schemathesis generates requests from the collector's own OpenAPI document (positive
and negative), hypothesis generates hostile events and bodies: wrong types in every
field, 1 MB strings, nesting past orjson's limits, invalid UTF-8, lone surrogates,
NaN and Infinity literals, timestamps in year 1 or 9999, 10k-property events, bad and
bomb gzip. Every answer is a 2xx or a 4xx with a JSON body naming the field at fault;
every accepted event is produced, and the worker's ``parse`` takes every one of them.

The strategies here also feed ``tests/e2e/test_fuzz_pipeline.py``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from stream.config import Settings
from stream.ingest.collector import PATHS, create_app
from stream.ingest.events import BATCH, MAX_DEPTH, MAX_REQUEST_BYTES
from stream.ingest.normalize import load_normalization
from stream.worker.processor import Message, parse
from tests.e2e.harness import ROOT
from tests.unit.test_collector_http import FakeProducer

WRITE_KEY = "wk-fuzz"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
#: Bounded so that the fuzz tests together stay well under a minute.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],  # no shrinking: failures print the request as sent
)


# --- hostile values -----------------------------------------------------------------------


class Raw(str):
    """JSON text inserted verbatim by :func:`encode` (nesting json/orjson cannot write, literals they refuse)."""


def encode(value: Any) -> bytes:
    """``value`` as JSON text, with :class:`Raw` parts verbatim, NaN/Infinity as literals and lone surrogates escaped."""
    if isinstance(value, Raw):
        return value.encode()
    if isinstance(value, dict):
        return b"{" + b",".join(json.dumps(k).encode() + b":" + encode(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(v) for v in value) + b"]"
    return json.dumps(value).encode()  # ensure_ascii: "\ud800" becomes the escape \ud800; nan becomes NaN


def nested(depth: int, leaf: str = "1") -> Raw:
    """An object ``depth`` levels deep, as raw JSON."""
    return Raw('{"a":' * depth + leaf + "}" * depth)


HUGE_STRING = "x" * 1_000_000
WIDE = {f"p{i}": i for i in range(10_000)}
TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59-01:00",
    "1969-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-05-01T12:00:00.000Z",
    "2024-05-01",
    "yesterday",
    "",
    " ",
    "NaN",
    "1714564800",
]
def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked in proportion to its weight."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda s: s)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8
)
#: Values JSON parsers refuse (NaN, Infinity, lone surrogates, numbers past a double): the whole body is bad JSON.
unparsable = st.sampled_from([float("nan"), float("inf"), float("-inf"), "\ud800", "\udfff", Raw("1e400"), Raw("-1e400")])
odd_scalars = st.sampled_from(
    [1e308, -0.0, 2**63, 2**64 - 1, "\x00", "a\x00b", "\u202e", "😀" * 50, "x" * 40_000, Raw("123456789012345678901234567890")]
)
hostile_scalars = weighted(
    (10, json_scalars),
    (4, st.sampled_from(TIMES)),
    (2, st.datetimes().map(lambda d: d.isoformat())),
    (4, odd_scalars),
    (1, st.just(HUGE_STRING)),
    (1, unparsable),
)
hostile_values = weighted(
    (6, hostile_scalars),
    (3, json_values),
    (2, st.integers(min_value=MAX_DEPTH - 2, max_value=1100).map(nested)),
    (1, st.just(WIDE)),
    (1, st.lists(hostile_scalars, max_size=3)),
    (1, st.dictionaries(st.text(max_size=6), hostile_scalars, max_size=3)),
)
FIELDS = [
    "type",
    "userId",
    "anonymousId",
    "messageId",
    "event",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "groupId",
    "previousId",
    "name",
    "category",
    "writeKey",
]


@st.composite
def hostile_event(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """A Segment event, mostly plausible, with hostile values in some of its fields."""
    kind = kind or draw(st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]))
    event: dict[str, Any] = {"type": kind, "userId": draw(st.text(min_size=1, max_size=12))}
    event.update({"track": {"event": "Order Completed"}, "group": {"groupId": "g1"}, "alias": {"previousId": "p1"}}.get(kind, {}))
    event["properties"] = {"revenue": draw(st.sampled_from([12.5, "12.5", "NaN", "Infinity", 1e308, -1e308, 2**64 - 1, None]))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        if draw(st.integers(0, 3)):
            event[name] = draw(hostile_values)
        else:
            event.pop(name, None)
    for path in draw(st.lists(st.sampled_from(["properties", "traits", "context"]), max_size=2)):
        inner = event.get(path)
        if isinstance(inner, dict):
            event[path] = {**inner, draw(st.text(max_size=8)): draw(hostile_values)}  # a copy: drawn values may be shared
    return event


@dataclass(frozen=True)
class Request:
    """One request to the collector: path, body bytes, headers, and how many events it holds."""

    path: str
    body: bytes
    headers: dict[str, str]
    events: int


#: 10 MB of zeros in 10 KB of gzip.
GZIP_BOMB = gzip.compress(b"\0" * (20 * MAX_REQUEST_BYTES), compresslevel=9)


BODY_MUTATIONS = {
    "none": lambda body: (body, {}),
    "gzip": lambda body: (gzip.compress(body), {"Content-Encoding": "gzip"}),
    "gzip_two_members": lambda body: (gzip.compress(body[: len(body) // 2]) + gzip.compress(body[len(body) // 2 :]), {"Content-Encoding": "GZIP"}),
    "gzip_truncated": lambda body: (gzip.compress(body)[:-5], {"Content-Encoding": "gzip"}),
    "gzip_garbage": lambda body: (b"\x1f\x8b\x08\x00garbage" + body, {"Content-Encoding": "gzip"}),
    "gzip_not": lambda body: (body, {"Content-Encoding": "gzip"}),
    "gzip_bomb": lambda body: (GZIP_BOMB, {"Content-Encoding": "gzip"}),
    "brotli": lambda body: (body, {"Content-Encoding": "br"}),
    "deflate": lambda body: (zlib.compress(body), {"Content-Encoding": "deflate"}),
    "bad_utf8": lambda body: (body.replace(b'"', b'"\xff\xfe', 1), {}),
    "utf8_surrogate": lambda body: (body.replace(b'"', b'"\xed\xa0\x80', 1), {}),
    "truncated": lambda body: (body[: max(len(body) // 2, 1)], {}),
    "nul": lambda body: (body + b"\x00", {}),
    "text_plain": lambda body: (body, {"Content-Type": "text/plain"}),
    "bom": lambda body: (b"\xef\xbb\xbf" + body, {}),
}


@st.composite
def hostile_request(draw: st.DrawFn) -> Request:
    """A request to any event path: single or batch body of hostile events, then a hostile encoding of the body."""
    path = draw(st.sampled_from(sorted(PATHS)))
    kind = PATHS[path]
    if kind == BATCH:
        events = draw(st.lists(weighted((7, hostile_event()), (1, hostile_values)), max_size=6))
        body: Any = {"batch": events}
        for name in draw(st.lists(st.sampled_from(["sentAt", "context", "integrations", "writeKey"]), max_size=2, unique=True)):
            body[name] = draw(hostile_values)
        if draw(st.integers(0, 9)) == 0:
            body = draw(hostile_values)  # not even a batch
        count = len(events)
    else:
        body = draw(weighted((7, hostile_event(kind)), (1, hostile_values)))
        count = 1
    mutation = draw(st.sampled_from(["none"] * len(BODY_MUTATIONS) + sorted(BODY_MUTATIONS)))
    raw, headers = BODY_MUTATIONS[mutation](encode(body))
    auth = draw(
        st.sampled_from(
            [AUTH] * 8
            + [{}, {"Authorization": "Basic %%%"}, {"Authorization": "Bearer x"}, {"Authorization": "Basic " + base64.b64encode(b"\xff:").decode()}]
        )
    )
    return Request(f"/v1/{path}", raw, {"Content-Type": "application/json", **auth, **headers}, count)


# --- the collector, served ------------------------------------------------------------------


@contextmanager
def served(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on a free loopback port from a background event loop; yields its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class Collector:
    """A served collector, the producer recording what it accepted, and an HTTP session to it."""

    url: str
    producer: FakeProducer
    http: requests.Session


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    """The collector with the shipped normalization, one write key, no rate limit; a recording producer."""
    producer = FakeProducer()
    configured = Settings(write_keys=WRITE_KEY, namespace="fuzz", rate_limit=0)
    app = create_app(configured, producer, load_normalization(ROOT / "normalize.yaml"))
    with served(app) as url, requests.Session() as http:
        yield Collector(url, producer, http)
        assert http.get(f"{url}/health").status_code == 200  # still serving


def check_answer(response: requests.Response) -> dict[str, Any]:
    """A 2xx, or a 4xx whose JSON body says what is wrong (naming each refused event's field); the body."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code >= 400:
        assert body["success"] is False and body["code"] and body["message"], body
        for error in body.get("errors", []):
            assert error["field"] and error["message"].startswith(error["field"]), error
    return body


def check_produced(collector: Collector, before: int, response: requests.Response, body: dict[str, Any], events: int) -> None:
    """Exactly the accepted events were produced, and the worker can use every one of them."""
    produced = collector.producer.records[before:]
    expected = events if response.status_code == 200 else body.get("accepted", 0)
    assert len(produced) == expected, (response.status_code, body)
    for _, key, value in produced:
        parse(Message(0, 0, key, value))  # raises Rejected: the collector accepted what the worker refuses


# --- the tests ------------------------------------------------------------------------------


@settings(FUZZ, max_examples=250)
@given(request=hostile_request())
def test_hostile_requests_get_2xx_or_a_4xx_naming_the_field(collector: Collector, request: Request) -> None:
    before = len(collector.producer.records)
    response = collector.http.post(collector.url + request.path, data=request.body, headers=request.headers)
    body = check_answer(response)
    check_produced(collector, before, response, body, request.events)


@pytest.mark.parametrize(
    ("path", "raw", "field", "says"),
    [
        ("/v1/track", encode({"userId": "u", "event": "e", "properties": nested(300)}), "properties.a.a", "nested more than"),
        ("/v1/batch", encode({"batch": [{"type": "track", "userId": "u", "event": "e"}], "context": nested(300)}), "context.a", "nested"),
        ("/v1/track", encode({"userId": "u", "event": "e", "timestamp": "9999-12-31T23:59:59-01:00"}), "timestamp", "years 1 to 9999"),
        ("/v1/track", encode({"userId": "u", "event": "e", "timestamp": "0001-01-01T00:00:00+01:00"}), "timestamp", "years 1 to 9999"),
        ("/v1/track", encode({"userId": "u", "event": "e", "timestamp": "0001-01-01T00:00:00Z"}), "timestamp", "not between 1970"),
        (
            "/v1/track",
            encode({"userId": "u", "event": "e", "originalTimestamp": "9999-12-31T23:59:59Z", "sentAt": "0001-01-01T00:00:00Z"}),
            "originalTimestamp",
            "clock skew",
        ),
        ("/v1/track", encode({"userId": "u", "event": "e", "properties": WIDE}), "body", "32768 bytes"),
        ("/v1/identify", encode({"userId": True}), "userId", "boolean"),
        ("/v1/batch", encode({"batch": [{"type": {"a": 1}, "userId": "u"}]}), "batch[0].type", "must be one of"),
        ("/v1/import", encode({"batch": [{"type": ["track"], "userId": "u"}]}), "batch[0].type", "must be one of"),
        ("/v1/identify", encode({"userId": "u", "context": {"traits": [1]}}), "context.traits", "JSON object"),
        ("/v1/b", encode({"batch": [{"type": "page", "userId": "u"}], "context": {"consent": "yes"}}), "context.consent", "JSON object"),
    ],
    ids=[
        "deep-event", "deep-batch-context", "year-10000-in-utc", "year-0-in-utc", "year-1", "skew-beyond-9999", "10k-properties",
        "bool-id", "object-type-in-batch", "array-type-in-batch", "array-context-traits", "string-consent-in-batch-context",
    ],
)
def test_known_hostile_events_are_refused_by_field(collector: Collector, path: str, raw: bytes, field: str, says: str) -> None:
    """Regressions: each of these answered 500 (or was accepted, then broke the worker) before."""
    response = collector.http.post(collector.url + path, data=raw, headers={"Content-Type": "application/json", **AUTH})
    body = check_answer(response)
    assert response.status_code == 400 and body["accepted"] == 0
    (error,) = body["errors"]
    assert error["field"].startswith(field) and says in error["message"], error


@pytest.mark.parametrize(
    ("raw", "headers", "status", "code"),
    [
        (GZIP_BOMB, {"Content-Encoding": "gzip"}, 413, "too_large"),
        (gzip.compress(b'{"userId": "u", "event": "e"}')[:-8], {"Content-Encoding": "gzip"}, 400, "bad_gzip"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00garbage", {"Content-Encoding": "gzip"}, 400, "bad_gzip"),
        (b'{"userId": "\xff\xfe", "event": "e"}', {}, 400, "bad_json"),
        (b'{"userId": "\\ud800", "event": "e"}', {}, 400, "bad_json"),
        (b'{"userId": "u", "event": "e", "properties": {"revenue": NaN}}', {}, 400, "bad_json"),
        (b'{"userId": "u", "event": "e", "properties": {"revenue": Infinity}}', {}, 400, "bad_json"),
        (b'{"userId": "u", "event": "e", "properties": ' + b'{"a":' * 2000 + b"1" + b"}" * 2001, {}, 400, "bad_json"),
        (b"x" * (MAX_REQUEST_BYTES + 1), {}, 413, "too_large"),
    ],
    ids=["gzip-bomb", "gzip-truncated", "gzip-garbage", "invalid-utf8", "lone-surrogate", "nan", "infinity", "depth-2000", "over-500KB"],
)
def test_hostile_bodies_are_refused_whole(collector: Collector, raw: bytes, headers: dict[str, str], status: int, code: str) -> None:
    response = collector.http.post(f"{collector.url}/v1/track", data=raw, headers={"Content-Type": "application/json", **AUTH, **headers})
    assert (response.status_code, check_answer(response)["code"]) == (status, code)


def test_accepted_odd_events_are_produced_as_sent(collector: Collector) -> None:
    """Odd but valid content (NUL in ids, 2**64 - 1, an event exactly MAX_DEPTH deep) is accepted and usable."""
    event = {"userId": "a\x00b", "event": "e", "properties": {"big": 2**64 - 1, "deep": nested(MAX_DEPTH - 2)}}
    before = len(collector.producer.records)
    response = collector.http.post(f"{collector.url}/v1/track", data=encode(event), headers=AUTH)
    check_produced(collector, before, response, check_answer(response), 1)
    assert response.status_code == 200
    (_, key, value) = collector.producer.records[-1]
    assert key == "a\x00b".encode() and orjson.loads(value)["properties"]["big"] == 2**64 - 1


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_from_the_openapi_document(collector: Collector, mode: GenerationMode) -> None:
    """Requests generated from ``GET /openapi.json`` (the document the collector serves) conform to it, never 5xx."""
    document = collector.http.get(f"{collector.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]

    @FUZZ
    @given(case=schema.as_strategy(mode, media_type="application/json"))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=collector.url, session=collector.http, headers=AUTH)
        case.validate_response(response, checks=checks)

    fuzz()
