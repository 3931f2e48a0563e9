"""The query API against a real redis-server started for these tests (no Kafka).

The fixtures here (a private redis-server, seeded state, the API served from a
background thread) also serve ``test_client.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import web

from stream.config import Settings
from stream.rules import load_rules
from stream.serving.api import create_app, run
from stream.state.rulestore import RuleWatcher
from stream.state import keys
from stream.state.profile import Event, Profile, iso
from stream.state.store import stored
from tests.e2e.harness import free_port, http_json, wait_until

NS = "t"
#: API keys the test settings accept: scope admin and scope read.
ADMIN_KEY, READ_KEY = "ak-admin-unit-test", "ak-read-unit-test"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
READ = {"Authorization": f"Bearer {READ_KEY}"}
T1, T2 = 1_700_000_000_000, 1_700_000_500_000
ALICE = Profile(
    "alice",
    traits={"plan": "pro"},
    counts={"Order Completed": 2},
    revenue=30.0,
    first_seen=T1,
    last_seen=T2,
    history=[Event(T1, "Order Completed", {"revenue": 10}), Event(T2, "Order Completed", {"revenue": 20})],
    memberships={"vip": T2, "buyers": T1},
    seq=2,
    points={"spend": [20.0, T2]},
    scores={"churn": {"v": 0.25, "m": 120}},
)
#: ALICE as the API shows her: her declared score "spend" (no decay) read through the rules.
ALICE_PUBLIC = ALICE.public({"spend": 20.0})
#: Ids that must survive URLs, Redis hash tags and cursors.
ODD_IDS = ["a/b", "with space", "{braced}", "ünï/cødé {x}", "50%"]
BUYERS = [f"m{i:05d}" for i in range(2500)] + ODD_IDS + ["alice"]
RULES = """\
scores:
  - {name: spend, points: [{event: Order Completed, points: 10}]}
segments:
  - {name: buyers, description: Bought, condition: {event: Order Completed, within: 30d}}
  - {name: vip, description: Big spenders, condition: {event: Order Completed, within: 7d}}
  - {name: odd, description: Odd ids, condition: {event: Odd, within: 1d}}
  - {name: quiet, condition: {event: Never, within: 1d}}
"""


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """Serve the API (rules from ``settings.rules_dir``) on a free port from a background loop; yields its URL."""
    ruleset = load_rules(settings.rules_dir)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    async def start() -> tuple[aioredis.Redis, web.AppRunner]:
        client = aioredis.Redis.from_url(settings.redis_url)
        runner = web.AppRunner(create_app(settings, client, RuleWatcher(client, settings.namespace, ruleset, settings.state_dir, 1000)))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return client, runner

    client, runner = call(start())
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        call(runner.cleanup())
        call(client.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free port, without persistence."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    with open(workdir / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(redis.Redis.from_url(url).ping, 10, f"redis-server on port {port} (log: {workdir}/redis.log)")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def settings(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the private redis-server and a small rule set, with Redis seeded."""
    rules_dir = tmp_path_factory.mktemp("rules")
    (rules_dir / "segments.yaml").write_text(RULES)
    r = redis.Redis.from_url(redis_url)
    for profile in [ALICE, *(Profile(cid, memberships={"odd": T1}) for cid in ODD_IDS)]:
        r.set(keys.profile(NS, profile.customer_id), stored(1, profile))
    r.zadd(keys.segment(NS, "buyers"), dict.fromkeys(BUYERS, 0))
    r.zadd(keys.segment(NS, "vip"), {"alice": 0})
    r.zadd(keys.segment(NS, "odd"), dict.fromkeys(ODD_IDS, 0))
    r.zadd(keys.segment(NS, "ghost"), {"alice": 0})  # in Redis, but not in the rules
    r.hset(keys.stats(NS), mapping={"events": 12, "changes": 3, "dead_letter:invalid": 1})
    return Settings(
        redis_url=redis_url,
        namespace=NS,
        rules_dir=rules_dir,
        state_dir=tmp_path_factory.mktemp("state"),
        api_keys=f"ops:admin:{ADMIN_KEY},dash:read:{READ_KEY}",
    )


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:
    """Base URL of the API served over the seeded Redis."""
    with serve(settings) as url:
        yield url


def get(url: str, headers: dict[str, str] = READ) -> tuple[int, Any]:
    """GET ``url`` with an API key (default: scope read)."""
    return http_json("GET", url, headers=headers)


def by_bytes(ids: list[str]) -> list[str]:
    """Ids in Redis lexicographic (byte) order."""
    return sorted(ids, key=str.encode)


def test_health(api: str) -> None:
    assert get(f"{api}/health") == (200, {"status": "ok"})


def test_without_redis_health_and_reads_answer_503(settings: Settings) -> None:
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with serve(dead) as url:
        status, body = get(f"{url}/health")
        assert status == 503 and body["status"] == "unavailable" and "PING" in body["error"]
        status, body = get(f"{url}/v1/stats")
        assert status == 503 and "Redis is unavailable" in body["error"]


def test_customer_is_the_public_profile(api: str) -> None:
    assert get(f"{api}/v1/customers/alice") == (200, ALICE_PUBLIC)
    assert ALICE_PUBLIC["scores"] == {"spend": {"value": 20.0}, "churn": {"value": 0.25, "model_version": 120}}


@pytest.mark.parametrize("cid", ODD_IDS)
def test_customer_ids_with_slashes_spaces_braces_and_unicode(api: str, cid: str) -> None:
    status, body = get(f"{api}/v1/customers/{quote(cid, safe='')}")
    assert status == 200 and body["customer_id"] == cid and body["segments"] == ["odd"]
    status, body = get(f"{api}/v1/customers/{quote(cid, safe='')}/segments")
    assert (status, body) == (200, {"customer_id": cid, "segments": [{"segment": "odd", "entered_at": iso(T1)}]})


def test_unknown_customer_is_404(api: str) -> None:
    assert get(f"{api}/v1/customers/nobody") == (404, {"error": "customer 'nobody' not found"})
    assert get(f"{api}/v1/customers/nobody/segments") == (404, {"error": "customer 'nobody' not found"})


def test_customer_segments_sorted_by_name_with_entry_time(api: str) -> None:
    assert get(f"{api}/v1/customers/alice/segments") == (
        200,
        {
            "customer_id": "alice",
            "segments": [{"segment": "buyers", "entered_at": iso(T1)}, {"segment": "vip", "entered_at": iso(T2)}],
        },
    )


def test_segments_lists_the_rules_with_member_counts(api: str, settings: Settings) -> None:
    status, body = get(f"{api}/v1/segments")
    assert status == 200
    assert [(s["name"], s["description"], s["members"]) for s in body["segments"]] == [
        ("buyers", "Bought", len(BUYERS)),
        ("odd", "Odd ids", len(ODD_IDS)),
        ("quiet", None, 0),
        ("vip", "Big spenders", 1),
    ]
    assert {s["source"] for s in body["segments"]} == {"segments.yaml"}


def test_members_default_page(api: str) -> None:
    status, body = get(f"{api}/v1/segments/buyers/members")
    assert status == 200 and body["segment"] == "buyers"
    assert body["members"] == by_bytes(BUYERS)[:100]
    assert body["next_cursor"] == body["members"][-1]


def pages(api: str, segment: str, limit: int) -> list[list[str]]:
    """Every page of a segment's members, following ``next_cursor``."""
    result: list[list[str]] = []
    cursor = None
    while True:
        query = f"limit={limit}" + (f"&cursor={quote(cursor, safe='')}" if cursor is not None else "")
        status, body = get(f"{api}/v1/segments/{segment}/members?{query}")
        assert status == 200, body
        result.append(body["members"])
        cursor = body["next_cursor"]
        if cursor is None:
            return result


def test_paging_returns_every_member_exactly_once(api: str) -> None:
    got = pages(api, "buyers", 1000)
    assert [len(p) for p in got] == [1000, 1000, len(BUYERS) - 2000]
    assert [m for p in got for m in p] == by_bytes(BUYERS)


def test_paging_with_odd_ids_as_cursors(api: str) -> None:
    assert pages(api, "odd", 1) == [[m] for m in by_bytes(ODD_IDS)]


def test_empty_segment(api: str) -> None:
    assert get(f"{api}/v1/segments/quiet/members") == (200, {"segment": "quiet", "members": [], "next_cursor": None})


@pytest.mark.parametrize("segment", ["nope", "ghost"])
def test_segment_not_in_the_rules_is_404(api: str, segment: str) -> None:
    status, body = get(f"{api}/v1/segments/{segment}/members")
    assert status == 404 and f"segment '{segment}' is not in the rules" in body["error"]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "1.5", "abc", ""])
def test_bad_limit_is_400_naming_the_parameter(api: str, limit: str) -> None:
    status, body = get(f"{api}/v1/segments/buyers/members?limit={limit}")
    assert status == 400 and "'limit'" in body["error"] and "1 to 1000" in body["error"]


def test_stats(api: str) -> None:
    assert get(f"{api}/v1/stats") == (200, {"events": 12, "changes": 3, "dead_letter:invalid": 1})


@pytest.mark.parametrize("method, path", [("POST", "/v1/stats"), ("DELETE", "/v1/segments"), ("PUT", "/health")])
def test_wrong_method_is_405(api: str, method: str, path: str) -> None:
    status, body = http_json(method, f"{api}{path}", body={}, headers=READ)
    assert status == 405 and "use GET" in body["error"]


def test_forget_without_a_producer_says_what_to_use(api: str) -> None:
    status, body = http_json("DELETE", f"{api}/v1/customers/alice", headers=ADMIN)
    assert status == 503 and "segstream forget" in body["error"]


@pytest.mark.parametrize("path", ["/v2/stats", "/v1/customers/", "/v1/customers/alice/orders"])
def test_unknown_path_is_404_json(api: str, path: str) -> None:
    status, body = get(f"{api}{path}")
    assert status == 404 and path in body["error"]


def test_run_refuses_bad_rules(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("segments: [{name: broken, condition: {within: soon}}]\n")
    assert run(settings.model_copy(update={"rules_dir": tmp_path})) == 2
    assert "refusing to start, the rules are invalid" in capsys.readouterr().err
