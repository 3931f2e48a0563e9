"""The collector's access control over HTTP: write keys that change while it runs, sources, rate limits, /stats."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

from aiohttp.test_utils import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from stream.auth.credentials import KeyRecord, new_key, parse_api_keys, parse_write_keys
from stream.auth.keystore import KeyRing
from tests.unit.test_collector_http import READ_KEY, TRACK, FakeProducer, answer, post, serve, stats

REFRESH_S = 0.05


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


class FakeStore:
    """Key records as Redis would hold them; ``down`` makes reading them fail."""

    def __init__(self, *records: KeyRecord) -> None:
        self.records = list(records)
        self.down = False

    async def load(self) -> list[KeyRecord]:
        if self.down:
            raise RedisConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        return list(self.records)

    def ring(self, env_write_keys: str = "") -> KeyRing:
        """A ring over this store, with the environment keys of ``serve``'s settings (the read key)."""
        static = parse_api_keys(f"reader:read:{READ_KEY}") + parse_write_keys(env_write_keys)
        return KeyRing(static, self.load, REFRESH_S)


async def refreshed() -> None:
    await asyncio.sleep(REFRESH_S * 4)


def test_keys_added_and_revoked_while_running_apply_within_the_refresh() -> None:
    web_key, web = new_key("write", "web", "write", 1)
    app_key, app = new_key("write", "app", "write", 1)
    store = FakeStore(web)

    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        assert (await post(client, "/v1/track", TRACK, basic(web_key))).status == 200
        status, payload = await answer(await post(client, "/v1/track", TRACK, basic(app_key)))
        assert (status, payload["code"]) == (401, "unknown_write_key")
        store.records.append(app)
        await refreshed()
        assert (await post(client, "/v1/track", TRACK, basic(app_key))).status == 200
        store.records[0] = replace(web, revoked=2)
        await refreshed()
        status, payload = await answer(await post(client, "/v1/track", TRACK, basic(web_key)))
        assert (status, payload["code"]) == (401, "revoked_write_key") and "source 'web' was revoked" in payload["message"]
        counters = await stats(client)
        assert counters["sources"] == {"web": 1, "app": 1}
        assert counters["rejected_requests"] == {"unknown_write_key": 1, "revoked_write_key": 1}

    serve(scenario, keys=store.ring())


def test_while_redis_is_down_the_keys_read_last_still_count() -> None:
    web_key, web = new_key("write", "web", "write", 1)
    store = FakeStore(web)

    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        store.down = True
        await refreshed()
        assert (await post(client, "/v1/track", TRACK, basic(web_key))).status == 200
        assert (await post(client, "/v1/track", TRACK, basic("other"))).status == 401

    serve(scenario, keys=store.ring())


def test_before_redis_ever_answered_unknown_keys_get_503_and_environment_keys_pass() -> None:
    store = FakeStore()
    store.down = True
    ring = store.ring("env-key")

    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        assert (await post(client, "/v1/track", TRACK, basic("env-key"))).status == 200
        response = await post(client, "/v1/track", TRACK, basic("maybe-in-redis"))
        status, payload = await answer(response)
        assert (status, payload["code"]) == (503, "keys_unavailable") and response.headers["Retry-After"] == "5"

    serve(scenario, keys=ring)


def test_a_key_over_its_rate_limit_gets_429_with_retry_after() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        batch = {"batch": [{**TRACK, "type": "track"}] * 3}
        assert (await post(client, "/v1/batch", batch, basic("web-key"))).status == 200
        response = await post(client, "/v1/track", TRACK, basic("web-key"))
        status, payload = await answer(response)
        assert (status, payload["success"], payload["code"]) == (429, False, "rate_limited")
        assert response.headers["Retry-After"] == "1"
        assert "source 'web' is over its rate limit of 2 events/s (burst 3): retry after 1 s" in payload["message"]
        assert (await post(client, "/v1/track", TRACK, basic("app-key"))).status == 200  # its own bucket
        await asyncio.sleep(0.6)
        assert (await post(client, "/v1/track", TRACK, basic("web-key"))).status == 200
        counters = await stats(client)
        assert counters["rejected_requests"] == {"rate_limited": 1} and counters["rejected_events"] == {"rate_limited": 1}
        assert counters["sources"] == {"web": 4, "app": 1}
        assert len(producer.records) == 5

    serve(scenario, write_keys="web:web-key,app:app-key", rate_limit=2, rate_burst=3)


def test_an_open_collector_limits_nobody() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        for _ in range(5):
            assert (await post(client, "/v1/track", TRACK, basic("any"))).status == 200

    serve(scenario, rate_limit=1, rate_burst=1)


def test_a_closed_collector_without_keys_refuses_everything() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        status, payload = await answer(await post(client, "/v1/track", TRACK, basic("any")))
        assert status == 401 and "SEGSTREAM_OPEN_COLLECTOR is false" in payload["message"]

    serve(scenario, open_collector=False)


def test_stats_need_an_api_key_of_scope_read() -> None:
    async def scenario(client: TestClient, producer: FakeProducer) -> None:
        response = await client.get("/stats")
        status, payload = await answer(response)
        assert (status, payload["code"]) == (401, "missing_api_key") and response.headers["WWW-Authenticate"] == "Bearer"
        status, payload = await answer(await client.get("/stats", headers={"Authorization": "Bearer web-key"}))
        assert status == 401 and "that is a write key" in payload["message"]
        status, payload = await answer(await client.get("/stats", headers={"Authorization": f"Bearer {READ_KEY}"}))
        assert status == 200 and payload["rejected_requests"] == {"missing_api_key": 1, "unknown_api_key": 1}
        assert (await client.get("/health")).status == 200

    serve(scenario, write_keys="web:web-key")
