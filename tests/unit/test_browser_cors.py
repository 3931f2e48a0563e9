"""CORS of the collector (``SEGSTREAM_CORS_ORIGINS``): the policy alone, then over HTTP with a fake producer."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from stream.config import Settings
from stream.ingest.browser import Cors
from tests.unit.test_collector_http import AUTH, TRACK, FakeProducer, answer, post, serve, stats

SHOP = {"Origin": "https://shop.example"}
EVIL = {"Origin": "https://evil.example"}
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,anonymousid,content-type"}


def test_any_origin_by_default_and_a_list_allows_only_its_origins() -> None:
    assert Cors.parse(Settings().cors_origins).allows("https://anything.example")
    cors = Cors.parse(" https://Shop.example , http://localhost:3000,null")
    assert cors.origins == {"https://shop.example", "http://localhost:3000", "null"}
    assert [cors.allows(o) for o in ("https://shop.example", "HTTPS://SHOP.EXAMPLE", "http://localhost:3000", "null", None)] == [True] * 5
    assert [cors.allows(o) for o in ("http://shop.example", "https://shop.example:8443", "http://localhost:3001")] == [False] * 3


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "is empty: set it to \\*"),
        ("*, https://shop.example", "lists no others|list no others"),
        ("https://shop.example/", "'https://shop.example/' is not an origin: write scheme://host\\[:port\\]"),
        ("shop.example", "'shop.example' is not an origin"),
    ],
)
def test_a_bad_setting_says_how_to_write_it(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Cors.parse(value)
    with pytest.raises(ValidationError, match="SEGSTREAM_CORS_ORIGINS"):
        Settings(cors_origins=value)


def test_the_preflight_allows_the_headers_both_browser_sdks_send() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        response = await client.options("/v1/p", headers={**SHOP, **PREFLIGHT})
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        allowed = {h.lower() for h in response.headers["Access-Control-Allow-Headers"].split(", ")}
        assert {"authorization", "anonymousid", "content-type", "x-retry-count"} <= allowed

    serve(scenario)


def test_a_listed_origin_sends_and_another_is_refused_403_naming_the_setting() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        preflight = await client.options("/v1/t", headers={**EVIL, **PREFLIGHT})
        status, body = await answer(preflight)
        assert status == 403 and body["code"] == "origin_not_allowed" and "SEGSTREAM_CORS_ORIGINS" in body["message"]
        assert "Access-Control-Allow-Origin" not in preflight.headers
        # A text/plain post with writeKey in the body needs no preflight: the collector itself refuses it.
        refused = await post(client, "/v1/t", {**TRACK, "writeKey": "k"}, EVIL)
        status, body = await answer(refused)
        assert (status, body["code"]) == (403, "origin_not_allowed")
        assert body["message"].startswith("Origin 'https://evil.example' may not send events")
        assert "Access-Control-Allow-Origin" not in refused.headers
        accepted = await post(client, "/v1/t", TRACK, {**AUTH, **SHOP})
        assert accepted.status == 200 and accepted.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        server_side = await post(client, "/v1/track", TRACK, AUTH)  # no Origin: servers and mobile SDKs
        assert server_side.status == 200 and "Access-Control-Allow-Origin" not in server_side.headers
        assert len(producer.records) == 2
        assert (await stats(client))["rejected_requests"] == {"origin_not_allowed": 1}

    serve(scenario, cors_origins="https://shop.example")
