"""The collector's HTTP handling only: no Kafka, a fake producer records or refuses what it is sent."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from stream.config import Settings
from stream.ingest.collector import PATHS, UNAVAILABLE, create_app
from stream.ingest.events import BATCH, MAX_EVENT_BYTES, MAX_REQUEST_BYTES
from stream.ingest.normalize import Normalizer, load_normalization
from stream.auth.keystore import KeyRing
from stream.kafka import KafkaUnavailable

KEY = "wk-test"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
#: An API key of scope read: ``GET /stats`` needs one.
READ_KEY = "ak-reader-test"
TRACK = {"userId": "alice", "event": "Signed Up", "properties": {"plan": "pro"}}


class FakeProducer:
    """Records what it is asked to produce, or raises ``KafkaUnavailable`` when ``down``."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.records: list[tuple[str, bytes | None, bytes]] = []

    async def send_many(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        batch = list(records)
        if self.down:
            raise KafkaUnavailable("Kafka did not acknowledge the record: broker down")
        self.records.extend(batch)

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for _, _, value in self.records]


Scenario = Callable[[TestClient, FakeProducer], Awaitable[None]]


def serve(
    scenario: Scenario,
    write_keys: str = "",
    down: bool = False,
    normalizer: Normalizer | None = None,
    keys: KeyRing | None = None,
    **settings: Any,
) -> None:
    """Run ``scenario`` against a collector app served on a loopback port (``settings``: more Settings fields)."""

    async def main() -> None:
        producer = FakeProducer(down)
        configured = Settings(write_keys=write_keys, namespace="unit", api_keys=f"reader:read:{READ_KEY}", **settings)
        app = create_app(configured, producer, normalizer, keys)
        async with TestClient(TestServer(app)) as client:
            await scenario(client, producer)

    asyncio.run(main())


async def post(client: TestClient, path: str, body: Any, headers: dict[str, str] | None = None) -> ClientResponse:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(path, data=data, headers={"Content-Type": "application/json", **(headers or {})})


async def answer(response: ClientResponse) -> tuple[int, Any]:
    return response.status, orjson.loads(await response.read())


async def stats(client: TestClient) -> dict[str, Any]:
    response = await client.get("/stats", headers={"Authorization": f"Bearer {READ_KEY}"})
    assert response.status == 200, await response.text()
    return orjson.loads(await response.read())


def test_track_with_basic_auth_is_produced_keyed_by_user() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        assert await answer(await post(client, "/v1/track", TRACK, AUTH)) == (200, {"success": True})
        ((topic, key, _),) = producer.records
        assert (topic, key) == ("unit.events", b"alice")
        (value,) = producer.values()
        assert (value["type"], value["event"], value["properties"]) == ("track", "Signed Up", {"plan": "pro"})
        assert await stats(client) == {
            "requests": 1,
            "accepted": {"track": 1},
            "sources": {"open": 1},
            "rejected_events": {},
            "rejected_requests": {},
            "normalization_notes": {},
        }

    serve(scenario)


def test_write_key_in_body_and_text_plain_like_analytics_js() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        body = orjson.dumps({**TRACK, "writeKey": KEY})
        response = await client.post("/v1/t", data=body, headers={"Content-Type": "text/plain"})
        assert await answer(response) == (200, {"success": True})
        (value,) = producer.values()
        assert "writeKey" not in value

    serve(scenario, write_keys=KEY)


@pytest.mark.parametrize(
    ("headers", "body", "says", "reason"),
    [
        ({}, TRACK, "missing write key", "missing_write_key"),
        ({}, {**TRACK, "writeKey": ""}, "missing write key", "missing_write_key"),
        ({"Authorization": "Basic " + base64.b64encode(b"other:").decode()}, TRACK, "unknown write key", "unknown_write_key"),
        ({}, {**TRACK, "writeKey": "other"}, "unknown write key", "unknown_write_key"),
        ({}, {**TRACK, "writeKey": READ_KEY}, "that is an API key", "unknown_write_key"),
        ({"Authorization": "Bearer abc"}, TRACK, "Basic auth", "bad_authorization"),
        ({"Authorization": "Basic %%%"}, TRACK, "Basic auth", "bad_authorization"),
    ],
)
def test_refused_write_keys_get_401(headers: dict[str, str], body: dict[str, Any], says: str, reason: str) -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        status, payload = await answer(await post(client, "/v1/track", body, headers))
        assert status == 401 and payload["success"] is False and says in payload["message"]
        assert payload["code"] == reason
        assert producer.records == []
        assert (await stats(client))["rejected_requests"] == {reason: 1}

    serve(scenario, write_keys=f"{KEY},spare")


def test_any_key_accepted_when_none_configured() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        assert (await post(client, "/v1/track", {**TRACK, "writeKey": "anything"})).status == 200
        assert (await post(client, "/v1/track", TRACK)).status == 401

    serve(scenario)


def test_gzip_batch_and_bad_gzip() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        batch = {"batch": [TRACK | {"type": "track"}, {"type": "identify", "userId": "bob", "traits": {"a": 1}}]}
        gzipped = {**AUTH, "Content-Encoding": "gzip"}
        assert await answer(await post(client, "/v1/batch", gzip.compress(orjson.dumps(batch)), gzipped)) == (
            200,
            {"success": True},
        )
        assert [v["type"] for v in producer.values()] == ["track", "identify"]
        status, payload = await answer(await post(client, "/v1/batch", orjson.dumps(batch), gzipped))
        assert (status, payload["message"]) == (400, "body is not valid gzip")
        status, payload = await answer(await post(client, "/v1/batch", gzip.compress(orjson.dumps(batch))[:-9], gzipped))
        assert (status, payload["code"]) == (400, "bad_gzip")
        assert (await stats(client))["rejected_requests"] == {"bad_gzip": 2}

    serve(scenario)


def test_invalid_json_names_the_problem() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        status, payload = await answer(await post(client, "/v1/track", b'{"userId": "u",', AUTH))
        assert (status, payload["code"]) == (400, "bad_json")
        assert payload["message"].startswith("body is not valid JSON: ")
        status, payload = await answer(await post(client, "/v1/track", [TRACK], AUTH))
        assert (status, payload["message"]) == (400, "body must be a JSON object, got a JSON list")

    serve(scenario)


def test_cors_preflight_and_origin() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        origin = {"Origin": "https://shop.example"}
        preflight = await client.options(
            "/v1/t", headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        )
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert {"Content-Type", "Authorization"} <= set(preflight.headers["Access-Control-Allow-Headers"].split(", "))
        response = await post(client, "/v1/t", TRACK, {**AUTH, **origin})
        assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        refused = await post(client, "/v1/t", TRACK)
        assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == "*"

    serve(scenario)


def test_oversized_event_is_400_naming_its_index() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        big = {"type": "track", "userId": "u", "event": "Big", "properties": {"blob": "x" * MAX_EVENT_BYTES}}
        status, payload = await answer(await post(client, "/v1/batch", {"batch": [TRACK | {"type": "track"}, big]}, AUTH))
        assert status == 400 and payload["code"] == "too_large" and payload["accepted"] == 1
        assert [(e["index"], e["field"]) for e in payload["errors"]] == [(1, "batch[1]")]
        status, payload = await answer(await post(client, "/v1/track", big, AUTH))
        assert status == 400 and payload["errors"][0]["index"] is None
        assert (await stats(client))["rejected_events"] == {"too_large": 2}

    serve(scenario)


def test_oversized_request_is_413_plain_or_gzip_bomb() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        huge = orjson.dumps({"batch": [{"pad": "x" * MAX_REQUEST_BYTES}]})
        status, payload = await answer(await post(client, "/v1/batch", huge, AUTH))
        assert (status, payload["code"]) == (413, "too_large")
        bomb = gzip.compress(b" " * (200 * MAX_REQUEST_BYTES))
        status, payload = await answer(await post(client, "/v1/batch", bomb, {**AUTH, "Content-Encoding": "gzip"}))
        assert (status, payload["code"]) == (413, "too_large")
        assert producer.records == []
        assert (await stats(client))["rejected_requests"] == {"too_large": 2}

    serve(scenario)


def test_partial_batch_is_400_listing_bad_events_and_produces_good_ones() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        events = [
            {"type": "track", "userId": "u", "event": "A"},
            {"type": "track", "userId": "u", "properties": {}},
            {"type": "page", "anonymousId": "anon", "name": "Home"},
            {"type": "identify", "traits": {}},
        ]
        status, payload = await answer(await post(client, "/v1/b", {"batch": events}, AUTH))
        assert status == 400
        assert payload["success"] is False and payload["accepted"] == 2
        assert [(e["index"], e["field"]) for e in payload["errors"]] == [(1, "batch[1].event"), (3, "batch[3].userId")]
        assert [v["type"] for v in producer.values()] == ["track", "page"]
        counters = await stats(client)
        assert counters["accepted"] == {"track": 1, "page": 1}
        assert counters["rejected_events"] == {"invalid_field": 2}

    serve(scenario)


def test_single_bad_event_names_the_field() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        status, payload = await answer(await post(client, "/v1/track", {"userId": "u", "properties": []}, AUTH))
        assert status == 400 and payload["accepted"] == 0
        assert [(e["index"], e["field"]) for e in payload["errors"]] == [(None, "event"), (None, "properties")]

    serve(scenario)


def test_kafka_unavailable_is_503_and_nothing_claimed_accepted() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        response = await post(client, "/v1/batch", {"batch": [TRACK | {"type": "track"}] * 3}, AUTH)
        status, payload = await answer(response)
        assert status == 503
        assert payload["success"] is False and payload["error"] == UNAVAILABLE
        assert int(response.headers["Retry-After"]) > 0
        counters = await stats(client)
        assert counters["accepted"] == {}
        assert counters["rejected_events"] == {"kafka_unavailable": 3}
        assert counters["rejected_requests"] == {"kafka_unavailable": 1}

    serve(scenario, down=True)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_path_takes_its_call_type(path: str) -> None:
    kind = PATHS[path]
    event = {"userId": "u", "event": "E", "groupId": "g", "previousId": "p"}
    body = {"batch": [{**event, "type": "screen"}]} if kind == BATCH else event

    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        assert (await post(client, f"/v1/{path}", body, AUTH)).status == 200
        assert [v["type"] for v in producer.values()] == ["screen" if kind == BATCH else kind]

    serve(scenario)


def test_health_and_unknown_paths() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        assert await answer(await client.get("/health")) == (200, {"status": "ok"})
        assert (await post(client, "/v1/nope", TRACK, AUTH)).status == 404

    serve(scenario)


def test_the_shipped_normalization_cleans_events_before_kafka_and_counts_what_it_left() -> None:
    shipped = load_normalization(Path(__file__).resolve().parents[2] / "normalize.yaml")
    event = {
        "type": "track",
        "userId": "n1",
        "event": "Order Completed",
        "properties": {"revenue": 10, "currency": "EUR", "utm_source": "fb"},
        "context": {"device": {"type": "iPhone"}},
    }
    odd = {"type": "track", "userId": "n2", "event": "Order Completed", "properties": {"revenue": 5, "currency": "XYZ"}}

    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        assert (await post(client, "/v1/batch", {"batch": [event, odd]}, AUTH)).status == 200
        clean, left = producer.values()
        assert clean["context"]["device"]["type"] == "Mobile" and clean["properties"]["utm_source"] == "Facebook"
        assert clean["properties"]["revenue"] == 10.8 and clean["properties"]["original_currency"] == "EUR"
        assert left["properties"] == {"revenue": 5, "currency": "XYZ"}  # unknown currency: as sent, counted
        assert (await stats(client))["normalization_notes"] == {"unknown_currency": 1}

    serve(scenario, normalizer=shipped)

