"""Segment sizes over time: bucketing, thinning, downsampling, range parsing, and the Redis series and endpoint."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from stream.config import Settings
from stream.serving import sizes
from stream.serving.sizes import Policy, auto_step, bucket, downsample, parse_range
from stream.state import keys
from stream.state.profile import iso, now_ms
from tests.e2e.harness import wait_until
from tests.unit.test_api import NS, get, serve
from tests.unit.test_api import redis_url, settings  # noqa: F401 - fixtures shared with the API tests

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
POLICY = Policy(every_ms=MIN, fine_ms=DAY, coarse_ms=HOUR, retention_ms=30 * DAY)


@given(st.integers(0, 10**13), st.integers(1, 10**7))
def test_a_bucket_is_the_sampling_interval_start(now: int, every: int) -> None:
    t = bucket(now, every)
    assert t % every == 0 and t <= now < t + every


@given(st.integers(0, 10**12).map(lambda n: n * MIN), st.integers(1, 50))
def test_thinning_keeps_exactly_one_bucket_per_coarse_period(start: int, hours: int) -> None:
    kept = [t for t in range(start, start + hours * HOUR, MIN) if POLICY.keeps_coarse(t)]
    assert len({t // HOUR for t in kept}) == len(kept)
    assert all(t % HOUR == 0 for t in kept)


def test_thinning_with_an_interval_that_does_not_divide_the_period_keeps_the_first_bucket_of_each() -> None:
    policy = Policy(every_ms=7 * MIN, fine_ms=0, coarse_ms=HOUR, retention_ms=DAY)
    buckets = range(0, 10 * HOUR, 7 * MIN)
    kept = [t for t in buckets if policy.keeps_coarse(t)]
    firsts = {}
    for t in buckets:
        firsts.setdefault(t // HOUR, t)
    assert kept == sorted(firsts.values())


def test_downsample_keeps_the_last_sample_and_the_extremes_of_each_step() -> None:
    points = [(0, 5), (MIN, 9), (2 * MIN, 7), (5 * MIN, 1), (9 * MIN, 4)]
    assert downsample(points, 0, 10 * MIN, 3 * MIN) == [
        {"t": 0, "members": 7, "min": 5, "max": 9},
        {"t": 3 * MIN, "members": 1, "min": 1, "max": 1},
        {"t": 9 * MIN, "members": 4, "min": 4, "max": 4},
    ]
    assert downsample(points, MIN, 2 * MIN, MIN) == [{"t": MIN, "members": 9, "min": 9, "max": 9}]


@given(st.integers(0, 10**12), st.integers(1, 60 * DAY), st.integers(1000, DAY))
def test_an_automatic_step_fits_the_point_budget_and_is_a_multiple_of_the_interval(start: int, span: int, every: int) -> None:
    step = auto_step(start, start + span, every)
    assert step % every == 0 and step >= every
    assert -(-span // step) <= sizes.MAX_POINTS


def test_parse_range_defaults_and_errors() -> None:
    assert parse_range({}, 10 * DAY, MIN) == (9 * DAY, 10 * DAY, auto_step(9 * DAY, 10 * DAY, MIN))
    assert parse_range({"from": iso(DAY), "to": str(2 * DAY), "step": "3600"}, 0, MIN) == (DAY, 2 * DAY, HOUR)
    for query, says in (
        ({"from": "yesterday"}, "'from' must be an ISO 8601 time"),
        ({"from": str(2 * DAY), "to": str(DAY)}, "must be before"),
        ({"from": "0", "to": str(DAY), "step": "0.5"}, "'step' must be"),
        ({"from": "0", "to": str(DAY), "step": "1"}, "at most 5000 steps"),
        ({"from": "0", "to": str(DAY), "step": "x"}, "'step' must be"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_range(query, DAY, MIN)


def test_record_is_one_point_per_bucket_thins_aged_points_and_drops_expired_ones(redis_url: str) -> None:  # noqa: F811
    ns = "sizes-record"

    async def scenario() -> list[tuple[int, int]]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            t0 = 100 * DAY
            for minute in range(0, 3 * 60):  # three hours of samples, each written by two "API processes"
                now = t0 + minute * MIN + 1234
                await sizes.record(client, ns, {"vip": minute}, now, POLICY)
                await sizes.record(client, ns, {"vip": minute + 1000}, now + 10, POLICY)  # the later write wins
            assert len(await sizes.read(client, ns, "vip", t0, t0 + 3 * HOUR)) == 180
            # a day later, the first hours are thinned to one point per hour
            await sizes.record(client, ns, {"vip": 7}, t0 + DAY + 3 * HOUR, POLICY)
            thinned = await sizes.read(client, ns, "vip", 0, t0 + 10 * DAY)
            # 30 days after the last of them, everything before is gone
            await sizes.record(client, ns, {"vip": 8}, t0 + 31 * DAY + 4 * HOUR, POLICY)
            assert await sizes.read(client, ns, "vip", 0, t0 + 10 * DAY) == []
            return thinned
        finally:
            await client.aclose()

    thinned = asyncio.run(scenario())
    t0 = 100 * DAY
    assert thinned == [(t0, 1000), (t0 + HOUR, 1060), (t0 + 2 * HOUR, 1120), (t0 + DAY + 3 * HOUR, 7)]


def test_the_api_samples_sizes_and_serves_them(settings: Settings) -> None:  # noqa: F811
    r = redis.Redis.from_url(settings.redis_url)
    r.delete(keys.sizes(NS, "buyers"))
    past = bucket(now_ms(), MIN) - 10 * MIN
    r.zadd(keys.sizes(NS, "buyers"), {f"{past}:40": past, f"{past + MIN}:41": past + MIN})
    with serve(settings) as url:
        sampled = lambda: len(get(f"{url}/v1/segments/buyers/sizes?from={past}")[1]["points"]) == 3  # noqa: E731
        wait_until(sampled, 10, "the API's start-up sample")
        status, body = get(f"{url}/v1/segments/buyers/sizes?from={past}")
        assert status == 200 and body["segment"] == "buyers" and body["every_s"] == settings.sizes_every_s
        members = [p["members"] for p in body["points"]]
        assert members[:2] == [40, 41] and members[-1] == r.zcard(keys.segment(NS, "buyers"))  # the start-up sample
        assert body["points"][0]["at"] == iso(past)
        status, body = get(f"{url}/v1/segments/buyers/sizes?from={past}&step=3600")
        assert status == 200 and len(body["points"]) == 1 and body["points"][0]["min"] == 40
        assert get(f"{url}/v1/segments/nope/sizes")[0] == 404
        status, body = get(f"{url}/v1/segments/buyers/sizes?from=soon")
        assert status == 400 and "'from' must be" in body["error"]
        assert get(f"{url}/v1/segments/buyers/sizes", headers={})[0] == 401
