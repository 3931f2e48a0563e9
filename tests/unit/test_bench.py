"""The benchmark's pure parts: percentiles, the workload, the SQL baseline against segstream's own evaluation, the report."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.bench import ceilings, latency, loadgen, options, profiles, report, sql, workload
from stream.bench.percentiles import percentile, summary
from stream.rules import RuleSet
from stream.rules.durations import UNITS_MS
from stream.state.profile import iso

NOW = 1_800_000_000_000
H, D = UNITS_MS["h"], UNITS_MS["d"]


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return workload.ruleset(tmp_path_factory.mktemp("rules"))


def segstream_members(records: list[dict[str, Any]], rules: RuleSet, now: int) -> dict[str, set[str]]:
    built = [p for p, _ in profiles.build(records, rules, profiles.policy(rules), now)]
    return profiles.memberships(built, sql.SEGMENTS)


def sql_members(records: list[dict[str, Any]], now: int) -> dict[str, set[str]]:
    con = sql.connect()
    sql.load(con, records)
    sql.recompute(con, now)
    found = sql.memberships(con)
    return {name: found.get(name, set()) for name in sql.SEGMENTS}


# --- percentiles -----------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0


def test_percentile_refuses_nothing_and_bad_p() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_missing_values_count_as_infinitely_late() -> None:
    assert summary([10.0] * 199, missing=1) == {"count": 199, "missing": 1, "p50": 10.0, "p95": 10.0, "p99": 10.0, "max": None}
    assert summary([10.0] * 90, missing=10)["p99"] is None
    assert summary([], missing=0)["p50"] is None


# --- workload --------------------------------------------------------------------------------


def test_workload_is_deterministic_and_moves_with_now() -> None:
    a = workload.generate(3_000, 300, NOW, seed=3)
    b = workload.generate(3_000, 300, NOW, seed=3)
    later = workload.generate(3_000, 300, NOW + 12_345, seed=3)
    assert a == b
    assert [r["ts"] + 12_345 for r in a] == [r["ts"] for r in later]
    assert [r["messageId"] for r in a] == [r["messageId"] for r in later]
    assert workload.generate(3_000, 300, NOW, seed=4) != a


def test_workload_shape() -> None:
    records = workload.generate(5_000, 600, NOW, seed=1)
    assert len(records) == 5_000
    assert workload.customers_of(records) == {f"c{i}" for i in range(600)}
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    assert all(r["timestamp"] == iso(r["ts"]) for r in records)
    assert len({r["messageId"] for r in records}) == len(records)
    identified = {r["userId"] for r in records if r["type"] == "identify"}
    assert identified == workload.customers_of(records)
    kinds = {r.get("event", r["type"]) for r in records}
    assert kinds == {"identify", "page", "Product Viewed", "Product Added", "Order Completed"}
    per_customer: dict[str, set[int]] = {}
    for r in records:
        assert r["ts"] not in per_customer.setdefault(r["userId"], set())  # newest-wins is never a tie
        per_customer[r["userId"]].add(r["ts"])


def test_workload_keeps_clear_of_every_rule_edge(rules: RuleSet) -> None:
    assert workload.rule_durations(rules) == set(workload.DURATIONS_MS)
    for r in workload.generate(5_000, 600, NOW, seed=2):
        age = NOW - r["ts"]
        assert age >= workload.MARGIN_MS
        for w in workload.DURATIONS_MS:
            assert not w - workload.MARGIN_MS <= age <= w, (age, w)


def test_first_numbers_customers_from_an_offset() -> None:
    assert workload.customers_of(workload.generate(20, 4, NOW, first=10)) == {"c10", "c11", "c12", "c13"}
    with pytest.raises(ValueError):
        workload.generate(3, 4, NOW)


def test_collector_and_latency_events() -> None:
    record = workload.generate(10, 2, NOW)[0]
    assert "ts" not in workload.http_event(record) and workload.http_event(record)["timestamp"] == record["timestamp"]
    event = workload.latency_event(7, "run1")
    assert event["userId"] == workload.latency_customer(7, "run1") and "timestamp" not in event


# --- the SQL baseline against segstream's own evaluation -------------------------------------


def test_sql_memberships_equal_segstream_on_the_workload(rules: RuleSet) -> None:
    records = workload.generate(6_000, 700, NOW, seed=9)
    live = segstream_members(records, rules, NOW)
    assert all(live[name] for name in sql.SEGMENTS), {n: len(m) for n, m in live.items()}  # every rule is exercised
    for now in (NOW, NOW + workload.MARGIN_MS - 1):  # memberships do not move during a run
        check = sql.compare(sql_members(records, now), live)
        assert check["match"], check


# Event times on and around the rules' edges, to probe every boundary of the SQL.
_EDGES = [0, 1, H - 1, H, H + 1, D - 1, D, D + 1, 7 * D - 1, 7 * D, 7 * D + 1, 14 * D - 1, 14 * D, 14 * D + 1, 30 * D - 1, 30 * D, 30 * D + 1]
_ages = st.one_of(st.sampled_from(_EDGES), st.integers(0, 32 * D))
_kinds = st.sampled_from(["view", "add", "order", "page"])


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    records = []
    for c in range(draw(st.integers(1, 4))):
        cid = f"h{c}"
        if draw(st.booleans()):  # one identify at most: newest-wins ties are not the point here
            traits = {"plan": draw(st.sampled_from(["pro", "free"])), "age": draw(st.sampled_from([24, 25, 44, 45, 30]))}
            records.append({"type": "identify", "userId": cid, "ts": NOW - draw(_ages), "traits": traits})
        for _ in range(draw(st.integers(0, 10))):
            kind, ts = draw(_kinds), NOW - draw(_ages)
            if kind == "page":
                records.append({"type": "page", "userId": cid, "ts": ts, "name": "Checkout"})
            elif kind == "order":
                records.append({"type": "track", "event": "Order Completed", "userId": cid, "ts": ts, "properties": {"revenue": draw(st.sampled_from([50, 100, 150, 200]))}})
            else:
                product = draw(st.integers(0, 5))
                props = {"product_id": f"p{product}", "category": ["shoes", "bags", "hats"][product % 3]}
                records.append({"type": "track", "event": "Product Viewed" if kind == "view" else "Product Added", "userId": cid, "ts": ts, "properties": props})
    return sorted(records, key=lambda r: r["ts"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=histories())
def test_sql_agrees_with_segstream_on_the_edges(rules: RuleSet, records: list[dict[str, Any]]) -> None:
    check = sql.compare(sql_members(records, NOW), segstream_members(records, rules, NOW))
    assert check["match"], check


def test_compare_names_the_differences() -> None:
    check = sql.compare({"dormant": {"a", "b"}}, {"dormant": {"b", "c"}})
    assert not check["match"]
    assert check["segments"]["dormant"] == {"sql": 2, "segstream": 2, "only_sql": ["a"], "only_segstream": ["c"]}
    assert sql.compare({}, {})["match"]
    both = sql.check({"dormant": {"a"}}, {"dormant": {"a", "b"}}, {"dormant": {"a"}})
    assert not both["match"] and both["profiles"]["match"] and not both["member_sets"]["match"]
    assert report.verdict(both) == "NO: member sets differ"


# --- measurements' pure helpers ----------------------------------------------------------------


def test_latencies_match_events_to_their_bodies() -> None:
    result = loadgen.Result(accepted_at=[100.0, None, 101.0])  # body 1 was never accepted
    arrived = {workload.latency_customer(i, "r"): t for i, t in {0: 100.05, 1: 100.2, 2: 101.0, 4: 101.5}.items()}
    measured, missing = latency.latencies(result, arrived, "r", batch=2)
    assert sorted(round(x) for x in measured) == [50, 200, 500]  # events 0, 1 (body 0) and 4 (body 2)
    assert missing == 3  # events 2 and 3 (body 1 refused) and 5 (no change)


def test_latency_bodies_number_events_in_order() -> None:
    bodies = latency.bodies("r", 6, 3)
    assert [b.events for b in bodies] == [3, 3]
    assert b'"userId":"r-3"' in bodies[1].data


def test_redis_benchmark_csv() -> None:
    text = '"test","rps","avg_latency_ms"\n"SET","800000.00","0.9"\n"HSET","600000.50","1.1"\n'
    assert ceilings.parse_csv(text) == {"SET": 800000.0, "HSET": 600000.5}


def test_options_quick_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    full = options.resolve(parser.parse_args([]))
    assert (full.events, full.customers, full.workers, full.rate, full.repeat) == (100_000, 12_500, "1,2", 2_000.0, 3)
    quick = options.resolve(parser.parse_args(["--quick", "--rate", "500"]))
    assert (quick.events, quick.rate, quick.memory_customers, quick.repeat) == (4_000, 500.0, 2_000, 1)
    assert options.parts("sql, worker") == ["worker", "sql"]
    for bad in (["--only", "nope"], ["--workers", "0"], ["--events", "5", "--customers", "9"], ["--repeat", "0"]):
        with pytest.raises(ValueError):
            options.resolve(parser.parse_args(bad))


# --- report ------------------------------------------------------------------------------------


def full_results() -> dict[str, Any]:
    lat = {"count": 100, "missing": 0, "p50": 40.0, "p95": 90.0, "p99": 120.0, "max": 130.0}
    return {
        "collector": {"concurrency": 32, "single": {"events_per_s": 3000.0}, "batch": {"events_per_s": 20000.0, "batch_size": 100}},
        "worker": {
            "1": {
                "events_per_s": 2500.0,
                "runs_events_per_s": [2600.0, 2400.0, 2500.0],
                "events": 100_000,
                "redis_commands_per_s": 8000.0,
                "redis_commands_per_event": 3.2,
            },
            "2": {"events_per_s": 4000.0, "events": 100_000, "redis_commands_per_s": 12000.0, "redis_commands_per_event": 3.0},
        },
        "ceilings": {"kafka_consumer": {"events_per_s": 250_000.0}, "redis_benchmark": {"pipeline": 16, "tests": {"SET": 5e5, "GET": 7e5}, "ops_per_s": 6e5}},
        "endtoend": {"events": 50_000, "events_per_s": 2400.0, "collector_events_per_s": 15000.0},
        "latency": {"rate": 2000.0, "latency_ms": lat},
        "timers": {"customers": 500, "lateness_ms": dict(lat, p99=1500.0)},
        "memory": {"customers": 100_000, "events_per_customer": 7, "bytes_per_customer": 1300.0, "profile_key_bytes": {"median": 990, "mean": 1050.0}},
        "sql": {
            "events": 100_000,
            "recompute_s": 0.04,
            "staleness_s": 0.08,
            "checks": {"worker x1": sql.check({"dormant": {"a", "b"}}, {"dormant": {"a", "b"}}, {"dormant": {"a", "b"}})},
        },
    }


def test_targets_say_what_is_met() -> None:
    met = {t["name"]: t["met"] for t in report.targets(full_results())}
    assert met == {
        "worker events/s (1 process, 10 rules)": False,
        "acceptance-to-change p99 at 2,000 events/s": True,
        "timer lateness p99": False,
        "Redis bytes per typical profile (MEMORY USAGE, median)": True,
    }
    assert report.targets({}) == []


def test_table_has_a_row_per_figure_with_ratios() -> None:
    rows = report.table_rows(full_results())
    text = report.markdown(rows)
    assert text.splitlines()[0] == "| measure | segstream | beside it | target |"
    assert len(rows) == 14
    assert "1.0 % of the bare consumer" in text  # 2,500 of the consumer's 250,000 events/s
    assert "1.3 % of redis-benchmark" in text  # 8,000 of redis-benchmark's 600,000 ops/s
    assert "1.60× one worker" in text
    assert "| 2,500 events/s | median of 3 runs (2,600 / 2,400 / 2,500); target >= 20,000;" in text
    assert "| SQL memberships = segstream's (worker x1) | yes | 2 memberships, in member sets and profiles |" in text


def test_formatting() -> None:
    assert report.rate(12345.6) == "12,346 events/s" and report.rate(None) == "n/a"
    assert report.ms(None) == "lost" and report.ms(12.4) == "12 ms" and report.ms(12_500) == "12.50 s"
    assert report.ratio(1, 300) == "0.33 %" and report.ratio(50, 100) == "50 %" and report.ratio(1, 0) == "n/a"
    low_rate = {"latency": {"rate": 200.0, "latency_ms": {"count": 1, "missing": 0, "p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0}}}
    assert report.table_rows(low_rate)[0][3] == "n/a (below 2,000/s)"
    assert not math.isnan(percentile([1.0, math.inf], 50))


def test_rules_file_is_written_where_asked(tmp_path: Path) -> None:
    path = workload.write_rules(tmp_path / "r")
    assert path.read_text() == workload.RULES_YAML
