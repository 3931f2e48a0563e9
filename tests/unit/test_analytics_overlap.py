"""Overlap analytics: Jaccard, warnings, segment selection (pure), and intersections from a real redis-server."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis
import redis.asyncio as aioredis

from stream.analytics import intersections as inter
from stream.analytics.errors import AnalyticsError
from stream.analytics.overlap import OverlapThresholds, jaccard, overlap_report, pairs, select_segments
from stream.analytics.tables import overlap_table
from stream.state import keys
from tests.unit.test_api import redis_url  # noqa: F401 - the private redis-server fixture

T = OverlapThresholds(duplicate_jaccard=0.9, subset_share=0.95, min_members=10)


def kinds(report: dict) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for warning in report["warnings"]:
        out.setdefault(warning["kind"], []).append(warning["segments"])
    return out


def test_jaccard_is_intersection_over_union() -> None:
    assert jaccard(10, 10, 5) == pytest.approx(5 / 15)
    assert jaccard(10, 0, 0) == 0.0
    assert jaccard(0, 0, 0) is None


def test_report_matrix_is_symmetric_with_ones_on_the_diagonal() -> None:
    sizes = {"a": 20, "b": 30, "c": 0}
    report = overlap_report(sizes, {("a", "b"): 10, ("a", "c"): 0, ("b", "c"): 0}, T)
    m = report["matrix"]
    assert m["a"]["b"] == m["b"]["a"] == pytest.approx(10 / 40)
    assert m["a"]["a"] == m["b"]["b"] == 1.0 and m["c"]["c"] is None
    assert m["a"]["c"] == 0.0
    assert report["intersections"]["b"]["a"] == 10 and report["intersections"]["b"]["b"] == 30


def test_warnings_flag_duplicates_subsets_small_and_empty_segments() -> None:
    sizes = {"dup1": 100, "dup2": 105, "big": 1000, "inside": 50, "tiny": 3, "none": 0, "apart": 200}
    common = {pair: 0 for pair in pairs(list(sizes))}
    common[("dup1", "dup2")] = 100  # Jaccard 100/105 = 0.952
    common[("big", "inside")] = 49  # 98% of inside is in big; Jaccard 0.049
    common[("dup1", "big")] = 60  # 60% of dup1: no warning
    report = overlap_report(sizes, common, T)
    assert kinds(report) == {
        "near_duplicate": [["dup1", "dup2"]],
        "subset": [["inside", "big"]],
        "too_small": [["tiny"]],
        "empty": [["none"]],
    }
    table = overlap_table(report)
    assert "dup1 & dup2" in table and "near_duplicate" in table and "0.952" in table


def test_a_near_duplicate_is_not_also_reported_as_subset() -> None:
    report = overlap_report({"a": 100, "b": 100}, {("a", "b"): 100}, T)
    assert kinds(report) == {"near_duplicate": [["a", "b"]]}


def test_thresholds_are_inclusive() -> None:
    report = overlap_report({"a": 10, "b": 10}, {("a", "b"): 9}, OverlapThresholds(duplicate_jaccard=9 / 11, subset_share=1.0, min_members=10))
    assert kinds(report) == {"near_duplicate": [["a", "b"]]}


def test_select_segments_checks_names_and_the_cap() -> None:
    known = ["a", "b", "c", "d"]
    assert select_segments(None, known, 10) == known
    assert select_segments(["c", "a", "c"], known, 10) == ["c", "a"]
    with pytest.raises(AnalyticsError, match="unknown segments: x"):
        select_segments(["a", "x"], known, 10)
    with pytest.raises(AnalyticsError, match="at least two"):
        select_segments(["a"], known, 10)
    with pytest.raises(AnalyticsError, match="4 segments make 6 pairs.*at most 3"):
        select_segments(None, known, 3)


@pytest.fixture
def seeded(redis_url: str) -> dict[str, set[str]]:  # noqa: F811
    members = {
        "s1": {f"c{i}" for i in range(0, 300)},
        "s2": {f"c{i}" for i in range(10, 300)},
        "s3": {f"c{i}" for i in range(250, 400)},
        "s4": set(),
        "s5": {"c1", "x{odd}/id"},
    }
    client = redis.Redis.from_url(redis_url)
    for name, ids in members.items():
        client.delete(keys.segment("ov", name))
        if ids:
            client.zadd(keys.segment("ov", name), {m: 0 for m in ids})
    return members


@pytest.mark.parametrize("count", [inter._intercard, inter._interstore], ids=["zintercard", "zinterstore"])
def test_intersections_from_redis_equal_python_sets(
    redis_url: str, seeded: dict[str, set[str]], count: object, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setattr(inter, "_intercard", count)
    monkeypatch.setattr(inter, "CHUNK", 3)  # several round trips
    seen: list[tuple[int, int]] = []

    async def go() -> dict:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await inter.measure_overlap(client, "ov", list(seeded), T, lambda done, total: seen.append((done, total)))
        finally:
            await client.aclose()

    report = asyncio.run(go())
    assert report["sizes"] == {name: len(ids) for name, ids in seeded.items()}
    for a, b in itertools.combinations(seeded, 2):
        assert report["intersections"][a][b] == len(seeded[a] & seeded[b]), (a, b)
    assert seen[-1] == (10, 10)
    assert redis.Redis.from_url(redis_url).keys("ov:tmp:*") == []
