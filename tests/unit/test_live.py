"""The live change stream: tokens, the bounded fan-out, and the server-sent events endpoint."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from stream.auth.credentials import KeySet, parse_api_keys
from stream.auth.errors import AccessDenied
from stream.config import Settings
from stream.rules import load_rules
from stream.serving.api import create_app
from stream.serving.live import STREAM_PATH, TOKEN_PATH, ChangeHub, check_token, frame, issue_token
from stream.state.rulestore import RuleWatcher
from tests.unit.test_api import READ, READ_KEY
from tests.unit.test_api import redis_url, settings  # noqa: F401 - fixtures shared with the API tests

KEYS = KeySet(parse_api_keys("dash:read:k-dash,ops:admin:k-ops"))
DASH = KEYS.records[0]
CHANGE = orjson.dumps({"id": "c-1", "customer_id": "alice", "segment": "vip", "change": "entered", "seq": 1})


def test_a_token_names_its_key_until_it_expires() -> None:
    token = issue_token(DASH, 5_000)
    assert check_token(KEYS, token, 5_000) == DASH
    with pytest.raises(AccessDenied, match="expired") as expired:
        check_token(KEYS, token, 5_001)
    assert expired.value.status == 401


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace(".5000.", ".9000."),  # a later expiry
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # another signature
        lambda t: t.replace(DASH.id, KEYS.records[1].id),  # another key's id
        lambda t: "v2" + t[2:],
        lambda t: "",
        lambda t: "v1.x.y.z",
    ],
)
def test_a_tampered_token_is_refused(tamper: object) -> None:
    with pytest.raises(AccessDenied, match="invalid stream token"):
        check_token(KEYS, tamper(issue_token(DASH, 5_000)), 1_000)  # type: ignore[operator]


def test_a_token_of_a_revoked_key_is_refused() -> None:
    revoked = KeySet([replace(DASH, revoked=1), KEYS.records[1]])
    with pytest.raises(AccessDenied, match="was revoked"):
        check_token(revoked, issue_token(DASH, 5_000), 1_000)


def test_a_slow_client_skips_changes_and_never_holds_back_the_others() -> None:
    async def scenario() -> None:
        hub = ChangeHub(queue_size=2)
        slow, fast = hub.subscribe(), hub.subscribe()
        for _ in range(5):
            hub.publish(CHANGE)
            await fast.queue.get()
        assert (slow.queue.qsize(), slow.dropped, fast.dropped) == (2, 3, 0)
        hub.unsubscribe(slow)
        hub.publish(CHANGE)
        assert fast.queue.get_nowait() == frame(CHANGE)

    asyncio.run(scenario())


def test_the_stream_serves_published_changes_to_token_and_key_holders(settings: Settings) -> None:  # noqa: F811
    async def scenario() -> None:
        redis_client = aioredis.Redis.from_url(settings.redis_url)
        hub = ChangeHub(settings.live_queue)
        watcher = RuleWatcher(redis_client, settings.namespace, load_rules(settings.rules_dir), settings.state_dir, 1000)
        client = TestClient(TestServer(create_app(settings, redis_client, watcher, hub=hub)))
        await client.start_server()
        try:
            assert (await client.post(TOKEN_PATH)).status == 401
            response = await client.post(TOKEN_PATH, headers=READ)
            token = (await response.json())["token"]
            refused = await client.get(STREAM_PATH, params={"token": token[:-2]})
            assert refused.status == 401 and "invalid stream token" in (await refused.json())["error"]
            assert (await client.get(STREAM_PATH)).status == 401
            for kwargs in ({"params": {"token": token}}, {"headers": READ}):
                stream = await client.get(STREAM_PATH, **kwargs)
                assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
                assert await stream.content.readuntil(b"\n\n") == b"retry: 3000\n: connected\n\n"
                hub.publish(CHANGE)
                assert await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5) == frame(CHANGE)
                stream.close()
            assert READ_KEY not in token
            # Shutting down ends an open stream at once, not at its next heartbeat (15 s).
            open_stream = await client.get(STREAM_PATH, headers=READ)
            await open_stream.content.readuntil(b"\n\n")
            started = time.monotonic()
            await asyncio.wait_for(client.server.close(), 10)
            assert await asyncio.wait_for(open_stream.content.read(), 5) == b""
            assert time.monotonic() - started < 5
        finally:
            await client.close()
            await redis_client.aclose()

    asyncio.run(scenario())
