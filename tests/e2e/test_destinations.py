"""`segstream destinations` against the real broker and redis-server, delivering to a real HTTP server in the test process.

Changes are produced to the segment-changes topic in their documented shape
(:class:`stream.output.changes.Change`); the sink runs as a child process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import orjson
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from stream.config import Settings
from stream.destinations.records import dead_letter_topic
from stream.destinations.signing import verify
from stream.output.changes import Change
from stream.state import keys
from tests.e2e.harness import Proc, TopicReader, produce, wait_until

SECRET = "whsec-e2e-0123456789"


@dataclass
class Request:
    """One request the receiver got, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


class Receiver:
    """A webhook and audience receiver on loopback, in its own thread and event loop.

    ``/hooks/ok`` accepts; ``/hooks/flaky`` answers 503 (``Retry-After: 0``) to the first
    ``fail_first`` attempts of each idempotency key; ``/hooks/rejects`` answers 400;
    ``/hooks/down`` 500. Each answer takes ``delay_s``. ``/audience`` keeps lists per segment.
    """

    def __init__(self, fail_first: int = 2, delay_s: float = 0.0, lists: dict[str, set[str]] | None = None) -> None:
        self.fail_first, self.delay_s = fail_first, delay_s
        self.requests: list[Request] = []
        self.lists: dict[str, set[str]] = defaultdict(set, lists or {})
        self.tries: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        app = web.Application()
        app.router.add_post("/hooks/{mode}", self.hook)
        app.router.add_post("/audience", self.update)
        app.router.add_get("/audience", self.members)
        self.server = TestServer(app, host="127.0.0.1")
        asyncio.run_coroutine_threadsafe(self.server.start_server(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    async def _record(self, request: web.Request, status: int) -> bytes:
        body = await request.read()
        await asyncio.sleep(self.delay_s)
        self.requests.append(Request(request.path, dict(request.headers), body, status, time.monotonic()))
        return body

    async def hook(self, request: web.Request) -> web.Response:
        mode = request.match_info["mode"]
        key = f"{mode}:{request.headers.get('Idempotency-Key')}"
        self.tries[key] += 1
        status = {"ok": 200, "rejects": 400, "down": 500}.get(mode, 503 if self.tries[key] <= self.fail_first else 204)
        await self._record(request, status)
        return web.Response(status=status, headers={"Retry-After": "0"} if status == 503 else None)

    async def update(self, request: web.Request) -> web.Response:
        update = orjson.loads(await self._record(request, 200))
        self.lists[update["segment"]] |= set(update["add"])
        self.lists[update["segment"]] -= set(update["remove"])
        return web.json_response({"ok": True})

    async def members(self, request: web.Request) -> web.Response:
        await self._record(request, 200)
        return web.json_response({"members": sorted(self.lists[request.query["segment"]])})

    def delivered(self, path: str) -> list[Request]:
        """Requests to ``path`` answered 2xx, in arrival order."""
        return [r for r in list(self.requests) if r.path == path and 200 <= r.status < 300]


def signed(request: Request) -> bool:
    """The README's receiver check: signature over timestamp and raw body, timestamp fresh."""
    return verify(SECRET, request.body, request.headers["X-Segstream-Signature"], request.headers["X-Segstream-Timestamp"], now=time.time())


def destinations_file(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "destinations.yaml"
    path.write_text("destinations:\n" + "".join(f"  - {{{e}, secret_env: E2E_HOOK_SECRET}}\n" for e in entries))
    return path


def changes(customers: int, per_customer: int, segment: str = "vip") -> list[Change]:
    """Alternating entered/exited changes, seq 1.. per customer."""
    return [
        Change(f"cust-{c}", segment, "entered" if seq % 2 else "exited", 1_700_000_000_000 + seq, seq, "test")
        for c in range(customers)
        for seq in range(1, per_customer + 1)
    ]


def publish(settings: Settings, items: list[Change], extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    produce(settings, settings.changes_topic, [(c.customer_id.encode(), c.to_bytes()) for c in items] + list(extra))


@pytest.fixture
def sinks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Proc]]:
    """Sink processes started by a test, stopped at teardown."""
    monkeypatch.setenv("E2E_HOOK_SECRET", SECRET)
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def start_sink(sinks: list[Proc], settings: Settings, config: Path, name: str = "destinations") -> Proc:
    proc = Proc(name, settings, ["destinations", "--config", str(config)]).start()
    sinks.append(proc)
    return proc


def wait_for(proc: Proc, check: Callable[[], object], timeout: float, what: str) -> None:
    """:func:`wait_until`, the sink's log in the failure."""
    try:
        wait_until(check, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; sink log:\n{proc.log()}") from None


def stat(settings: Settings, name: str) -> int:
    return int(redis.Redis.from_url(settings.redis_url).hget(keys.stats(settings.namespace), name) or 0)


def first_seqs_in_order(requests: list[Request]) -> dict[str, list[int]]:
    """Per customer, each seq at its first delivery, in arrival order."""
    seen: dict[str, list[int]] = defaultdict(list)
    for request in requests:
        record = orjson.loads(request.body)
        if record["seq"] not in seen[record["customer_id"]]:
            seen[record["customer_id"]].append(record["seq"])
    return seen


def test_webhooks_are_signed_retried_in_order_and_dead_lettered(settings: Settings, sinks: list[Proc], tmp_path: Path) -> None:
    items = changes(customers=8, per_customer=3)
    other = Change("cust-0", "other", "entered", 1_700_000_000_100, 4, "test")
    publish(settings, [*items, other], extra=[(b"cust-x", b"not a change")])
    fast = "backoff: {initial_s: 0.05, max_s: 0.2}"
    with Receiver(fail_first=2) as receiver:
        config = destinations_file(
            tmp_path,
            f"name: flaky, kind: webhook, url: '{receiver.url('/hooks/flaky')}', segments: [vip], max_attempts: 4, {fast}",
            f"name: rejects, kind: webhook, url: '{receiver.url('/hooks/rejects')}', segments: all, {fast}",
            f"name: down, kind: webhook, url: '{receiver.url('/hooks/down')}', segments: [vip], max_attempts: 3, {fast}",
        )
        proc = start_sink(sinks, settings, config)
        rejected = TopicReader(settings, dead_letter_topic(settings.namespace, "rejects"))
        exhausted = TopicReader(settings, dead_letter_topic(settings.namespace, "down"))
        wait_for(proc, lambda: len({r.body for r in receiver.delivered("/hooks/flaky")}) == len(items), 90, "deliveries")
        wait_for(proc, lambda: len(rejected.poll()) == len(items) + 2, 60, "dead letters of 'rejects'")
        wait_for(proc, lambda: len(exhausted.poll()) == len(items) + 1, 60, "dead letters of 'down'")

        delivered = receiver.delivered("/hooks/flaky")
        assert sorted(orjson.loads(r.body)["id"] for r in delivered) == sorted(c.id for c in items)  # only vip, each once
        for request in receiver.requests:
            assert signed(request), request
            assert request.headers["Idempotency-Key"] == orjson.loads(request.body)["id"]
            assert request.headers["Content-Type"] == "application/json"
        assert {r.body for r in delivered} == {c.to_bytes() for c in items}  # the record as published, byte for byte
        assert all(receiver.tries[f"flaky:{c.id}"] == 3 for c in items)  # two 503s, then delivered
        assert first_seqs_in_order(delivered) == {f"cust-{c}": [1, 2, 3] for c in range(8)}

        by_reason = Counter((r["reason"], r["status"], r["attempts"]) for r in rejected.records)
        assert by_reason == {("rejected", 400, 1): len(items) + 1, ("invalid_change", None, 0): 1}
        assert {r["change"]["id"] for r in rejected.records if r["change"]} == {c.id for c in [*items, other]}
        assert next(r for r in rejected.records if r["change"] is None)["value"] == "not a change"
        down = [r for r in exhausted.records if r["change"]]
        assert {(r["reason"], r["status"], r["attempts"]) for r in down} == {("attempts_exhausted", 500, 3)}
        assert all(r["destination"] == "down" and r["error"].startswith("HTTP 500") for r in down)
        rejected.close()
        exhausted.close()

    wait_for(proc, lambda: stat(settings, "destination:flaky:delivered") == len(items), 10, "the delivered counter")
    assert stat(settings, "destination:flaky:retries") == 2 * len(items)
    assert stat(settings, "destination:rejects:dead_letter") == len(items) + 2
    assert stat(settings, "destination:down:dead_letter") == len(items) + 1
    assert SECRET not in proc.log()


def test_a_killed_sink_delivers_every_change_at_least_once_after_restart(settings: Settings, sinks: list[Proc], tmp_path: Path) -> None:
    items = changes(customers=12, per_customer=10)
    publish(settings, items)
    with Receiver(delay_s=0.03) as receiver:
        config = destinations_file(tmp_path, f"name: crm, kind: webhook, url: '{receiver.url('/hooks/ok')}', segments: all")
        first = start_sink(sinks, settings, config, "destinations-1")
        wait_for(first, lambda: len(receiver.delivered("/hooks/ok")) >= 30, 60, "first deliveries")
        first.kill()
        killed_after = len(receiver.delivered("/hooks/ok"))
        assert killed_after < len(items), "the sink finished before it was killed; make the receiver slower"
        second = start_sink(sinks, settings, config, "destinations-2")
        wait_for(
            second,
            lambda: {orjson.loads(r.body)["id"] for r in receiver.delivered("/hooks/ok")} == {c.id for c in items},
            90,
            "every change delivered after the restart",
        )
        delivered = receiver.delivered("/hooks/ok")
        bodies: dict[str, set[bytes]] = defaultdict(set)
        for request in delivered:
            bodies[request.headers["Idempotency-Key"]].add(request.body)
            assert signed(request)
        assert all(len(b) == 1 for b in bodies.values())  # a duplicate is the same change under the same key
        assert first_seqs_in_order(delivered) == {f"cust-{c}": list(range(1, 11)) for c in range(12)}
        print(f"{killed_after} delivered before SIGKILL, {len(delivered) - len(items)} duplicates after restart")


def test_audience_list_equals_the_segment_after_reconcile_enters_and_exits(settings: Settings, sinks: list[Proc], tmp_path: Path) -> None:
    # Final membership, as the worker keeps it in Redis: cust-5..9 entered and stayed; cust-10 is a member
    # whose change the sink never sees (only the reconcile can add it); cust-0..4 entered and exited.
    members = {f"cust-{c}" for c in range(5, 11)}
    redis.Redis.from_url(settings.redis_url).zadd(keys.segment(settings.namespace, "vip"), {m: 0 for m in members})
    items = [Change(f"cust-{c}", "vip", "entered", 1_700_000_000_000, 1, "test") for c in range(10)]
    items += [Change(f"cust-{c}", "vip", "exited", 1_700_000_000_001, 2, "test") for c in range(5)]
    publish(settings, [*items, Change("cust-1", "other", "entered", 1_700_000_000_002, 3, "test")])
    with Receiver(lists={"vip": {"ghost", "cust-0"}}) as receiver:  # stale entries the reconcile removes
        config = destinations_file(
            tmp_path, f"name: ads, kind: audience, url: '{receiver.url('/audience')}', segments: [vip], batch_size: 100, linger_s: 1"
        )
        proc = start_sink(sinks, settings, config)
        wait_for(proc, lambda: stat(settings, "destination:ads:delivered") == len(items), 60, "the audience batch")
        assert receiver.lists["vip"] == members
        assert "other" not in receiver.lists
        posts = [orjson.loads(r.body) for r in receiver.delivered("/audience") if r.body and not r.headers["Idempotency-Key"].startswith("reconcile")]
        assert posts and all(p["segment"] == "vip" for p in posts)
        # Entered and exited within the batch: sent once, as removed, never added.
        assert not {f"cust-{c}" for c in range(5)} & {m for p in posts for m in p["add"]}
        assert all(signed(r) for r in receiver.requests)
        gets = [r for r in receiver.requests if r.path == "/audience" and not r.body]
        assert len(gets) == 1  # the reconcile on start
