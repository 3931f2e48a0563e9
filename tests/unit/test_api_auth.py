"""The query API's access control against a real redis-server: bearer keys, scopes, keys changing while it runs.

Fixtures (private redis-server, seeded namespace) come from ``test_api``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis.asyncio as aioredis

from stream.auth.credentials import KeyRecord, Kind, Scope
from stream.auth.keystore import add_key, revoke_key
from stream.client import Client, NotFound, SegstreamError, Unauthorized
from stream.config import Settings
from tests.e2e.harness import http_json, wait_until
from tests.unit.test_api import ADMIN, ADMIN_KEY, READ, READ_KEY, get, serve
from tests.unit.test_api import redis_url, settings  # noqa: F401 - fixtures shared with the API tests

REFRESH_S = 0.1


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:  # noqa: F811
    """The API over the seeded namespace, re-reading keys every REFRESH_S; rules deployed into a namespace of its own."""
    with serve(settings.model_copy(update={"keys_refresh_s": REFRESH_S})) as url:
        yield url


def in_redis(settings: Settings, call: Any) -> Any:  # noqa: F811
    async def go() -> Any:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await call(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def add(settings: Settings, kind: Kind, name: str, scope: Scope) -> tuple[str, KeyRecord]:  # noqa: F811
    return in_redis(settings, lambda c: add_key(c, settings.namespace, kind, name, scope, 1))


def test_health_is_open(api: str) -> None:
    assert http_json("GET", f"{api}/health") == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "path", ["/v1/customers/alice", "/v1/segments", "/v1/segments/buyers/members", "/v1/rules", "/v1/stats", "/v1/models", "/metrics", "/v2/nothing"]
)
def test_every_other_endpoint_needs_a_key(api: str, path: str) -> None:
    request = urllib.request.Request(f"{api}{path}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401 and refused.value.headers["WWW-Authenticate"] == 'Bearer realm="segstream"'
    assert b"missing API key: send `Authorization: Bearer <key>`" in refused.value.read()
    status, body = get(f"{api}{path}", {"Authorization": "Bearer not-a-key"})
    assert status == 401 and body["error"].startswith("unknown API key")


def test_metrics_with_a_read_key(api: str) -> None:
    request = urllib.request.Request(f"{api}/metrics", headers=READ)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200 and b"segstream_events_total 12" in response.read()


def test_forget_needs_scope_admin(api: str) -> None:
    status, body = http_json("DELETE", f"{api}/v1/customers/alice", headers=READ)
    assert status == 403
    assert body["error"] == "API key 'dash' has scope read; DELETE /v1/customers/{id} needs scope admin: use a key with scope admin"
    status, body = http_json("DELETE", f"{api}/v1/customers/alice", headers=ADMIN)
    assert status == 503  # allowed; this API has no Kafka producer


def test_keys_added_and_revoked_in_redis_apply_within_the_refresh(api: str, settings: Settings) -> None:  # noqa: F811
    key, record = add(settings, "api", "late", "read")
    started = time.monotonic()
    wait_until(lambda: get(f"{api}/v1/stats", {"Authorization": f"Bearer {key}"})[0] == 200, 5, "a new key accepted")
    in_redis(settings, lambda c: revoke_key(c, settings.namespace, record.id, 2))
    wait_until(lambda: get(f"{api}/v1/stats", {"Authorization": f"Bearer {key}"})[0] == 401, 5, "a revoked key refused")
    assert time.monotonic() - started < 2
    status, body = get(f"{api}/v1/stats", {"Authorization": f"Bearer {key}"})
    assert body["error"].startswith("API key 'late'") and "revoked" in body["error"]


def test_a_write_key_is_no_api_key(api: str, settings: Settings) -> None:  # noqa: F811
    key, _ = add(settings, "write", "web", "write")
    wait_until(lambda: "write key" in get(f"{api}/v1/stats", {"Authorization": f"Bearer {key}"})[1]["error"], 5, "write key told apart")


@pytest.fixture
def deploy_api(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Settings]]:  # noqa: F811
    """An API on a namespace of its own, so deployments leave the seeded one alone."""
    own = settings.model_copy(update={"namespace": f"deploy{time.time_ns()}", "state_dir": tmp_path})
    with serve(own) as url:
        yield url, own


def test_deploy_rules_over_http(deploy_api: tuple[str, Settings]) -> None:
    url, _ = deploy_api
    files = {"files": {"a.yaml": "segments:\n  - {name: fresh, condition: {event: Order Completed, within: 1d}}\n"}}
    status, body = http_json("POST", f"{url}/v1/rules", files, READ)
    assert status == 403 and "POST /v1/rules needs scope admin" in body["error"]
    status, body = http_json("POST", f"{url}/v1/rules", files, ADMIN)
    assert status == 200 and body["deployed"] is True and body["segments"] == ["fresh"]
    assert http_json("POST", f"{url}/v1/rules", files, ADMIN)[1]["deployed"] is False
    bad = {"files": {"b.yaml": "segments:\n  - {name: broken, condition: {event: X, within: soon}}\n"}}
    status, body = http_json("POST", f"{url}/v1/rules", bad, ADMIN)
    assert status == 400 and body["error"].startswith("not deployed: b.yaml") and "within" in body["error"]


@pytest.mark.parametrize(
    "body, says",
    [
        ({}, 'body must be {"files"'),
        ({"files": {}}, "at least one file"),
        ({"files": {"../x.yaml": "segments: []"}}, "must be a plain name"),
        ({"files": {"x.txt": "segments: []"}}, "must be a plain name"),
    ],
)
def test_deploy_rules_bad_bodies(deploy_api: tuple[str, Settings], body: dict[str, Any], says: str) -> None:
    status, answer = http_json("POST", f"{deploy_api[0]}/v1/rules", body, ADMIN)
    assert status == 400 and says in answer["error"]


def test_client_sends_the_key_of_the_environment(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_API_KEY", READ_KEY)
    assert Client(api).stats()["events"] == 12
    monkeypatch.delenv("SEGSTREAM_API_KEY")
    with pytest.raises(Unauthorized, match="no API key was sent: set SEGSTREAM_API_KEY") as caught:
        Client(api).stats()
    assert caught.value.status == 401 and "api key missing" in repr(Client(api))
    assert READ_KEY not in repr(Client(api, api_key=READ_KEY))


def test_client_forget_and_deploy_need_admin(api: str, deploy_api: tuple[str, Settings], tmp_path: Path) -> None:
    with pytest.raises(Unauthorized, match="needs scope admin") as caught:
        Client(api, api_key=READ_KEY).forget("alice")
    assert caught.value.status == 403
    with pytest.raises(SegstreamError, match="no Kafka producer") as unavailable:
        Client(api, api_key=ADMIN_KEY).forget("alice", suppress=True)
    assert unavailable.value.status == 503 and not isinstance(unavailable.value, (Unauthorized, NotFound))
    (tmp_path / "r.yaml").write_text("segments:\n  - {name: via_client, condition: {event: E, within: 1h}}\n")
    deployed = Client(deploy_api[0], api_key=ADMIN_KEY).deploy_rules(tmp_path)
    assert deployed["deployed"] is True and deployed["segments"] == ["via_client"]
