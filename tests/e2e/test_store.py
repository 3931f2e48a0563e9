"""The Redis edge against a real redis-server: atomic commit, optimistic concurrency, outbox and markers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from stream.config import Settings
from stream.models.records import TrainingRecord
from stream.output.changes import Change
from stream.state import keys
from stream.state.pipeline import raise_errors, round_trip
from stream.state.store import Commit, ProfileStore


def run(coro):  # noqa: ANN001, ANN201 - tiny test helper
    return asyncio.run(coro)


def store(settings: Settings) -> ProfileStore:
    return ProfileStore(aioredis.Redis.from_url(settings.redis_url), f"t{uuid.uuid4().hex[:8]}")


def test_commit_writes_profile_and_outbox_and_rejects_stale_versions(base_settings: Settings) -> None:
    async def scenario() -> None:
        s = store(base_settings)
        [loaded] = (await s.load(["a{b}"])).values()
        assert loaded.version == 0 and loaded.profile.customer_id == "a{b}"
        loaded.profile.traits["x"] = 1
        loaded.profile.partition = 3
        change = Change("a{b}", "seg", "entered", 1000, 1, "why")
        example = TrainingRecord("a{b}", "churn", 900, {"recency_days": 1.0}, y=0.0, resolved_at=1000)
        assert await s.commit([Commit(loaded, [change], [example])], now=1000) == []
        again = (await s.load(["a{b}"]))["a{b}"]
        assert again.version == 1 and again.profile.traits == {"x": 1}
        # The outbox entry and its pending marker exist until publication is confirmed.
        # Changes (field: seq) and training records (field: t:<kind>:<at>) share the outbox and markers.
        assert await s.outbox_entries([("a{b}", 1), ("a{b}", example.field)]) == [change, example]
        assert set((await s.stale_pending([3], older_than=1000))[3]) == {("a{b}", 1), ("a{b}", "t:churn:900")}
        # A commit based on the old version is refused and changes nothing.
        loaded.profile.traits["x"] = 2
        assert await s.commit([Commit(loaded)], now=1001) == ["a{b}"]
        assert (await s.load(["a{b}"]))["a{b}"].profile.traits == {"x": 1}
        await s.confirm_published([change, example], {"a{b}": 3})
        assert await s.outbox_entries([("a{b}", 1), ("a{b}", example.field)]) == [None, None]
        assert await s.stale_pending([3], older_than=10**13) == {3: []}
        assert await s.redis.zrange(keys.segment(s.ns, "seg"), 0, -1) == [b"a{b}"]
        await s.confirm_published([Change("a{b}", "seg", "exited", 2000, 2, "gone")], {"a{b}": 3})
        assert await s.redis.zcard(keys.segment(s.ns, "seg")) == 0
        assert int(await s.redis.hget(keys.stats(s.ns), "changes")) == 2
        assert int(await s.redis.hget(keys.stats(s.ns), "training_records")) == 1

    run(scenario())


def test_timers_register_and_fall_due(base_settings: Settings) -> None:
    async def scenario() -> None:
        s = store(base_settings)
        loaded = await s.load(["u1", "u2"])
        loaded["u1"].profile.partition, loaded["u1"].profile.deadline = 2, 5000
        loaded["u2"].profile.partition, loaded["u2"].profile.deadline = 2, 9000
        assert await s.commit([], now=0, timers=[l.profile for l in loaded.values()]) == []
        assert await s.due([2], now=4999) == {2: []}
        assert await s.due([2, 1], now=5000) == {2: ["u1"], 1: []}
        assert await s.earliest_deadline([0, 2]) == 5000
        loaded["u1"].profile.deadline = None
        await s.commit([], now=0, timers=[loaded["u1"].profile], counters={"events": 3})
        assert await s.due([2], now=10_000) == {2: ["u2"]}
        assert int(await s.redis.hget(keys.stats(s.ns), "events")) == 3

    run(scenario())


def test_key_layout_puts_a_customers_keys_in_one_slot() -> None:
    for cid in ["alice", "a{b}c", "}x", "%7B", "ü 1/2"]:
        p, o = keys.profile("ns", cid), keys.outbox("ns", cid)
        tag = p[p.index("{") + 1 : p.index("}")]
        assert o.startswith(p) and tag and "}" not in tag
        assert keys.customer_of(p) == cid


def test_lean_round_trip_returns_replies_in_order_with_errors_in_place(base_settings: Settings) -> None:
    key = f"t{uuid.uuid4().hex[:8]}:x"

    async def scenario() -> list[object]:
        client = aioredis.Redis.from_url(base_settings.redis_url)
        replies = await round_trip(client, [(b"SET", key, "v"), (b"INCR", key), (b"GET", key), (b"DEL", key)], 5.0)
        again = await round_trip(client, [(b"PING",)], 5.0)  # the connection is still in step
        await client.aclose()
        return [*replies, *again]

    ok, error, value, deleted, pong = run(scenario())
    assert (ok, value, deleted, pong) == (b"OK", b"v", 1, b"PONG")
    assert isinstance(error, ResponseError) and "not an integer" in str(error)
    with pytest.raises(ResponseError):
        raise_errors([ok, error])
