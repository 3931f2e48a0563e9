"""`scripts/bench --quick` against the real broker: every figure is in the JSON and the SQL baseline agrees with segstream."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from stream.config import Settings
from stream.kafka import admin
from tests.e2e.harness import ROOT, settings_env


def bench_topics(settings: Settings) -> set[str]:
    return {t for t in admin(settings).list_topics(timeout=10).topics if t.startswith("bench")}


@pytest.mark.timeout(240)
def test_quick_bench_reports_every_figure(base_settings: Settings, tmp_path: Path) -> None:
    before = bench_topics(base_settings)
    out = tmp_path / "bench.json"
    quicker = ["--collector-duration", "1", "--duration", "2", "--timer-window", "1", "--redis-requests", "20000"]
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--quick", *quicker, "--out", str(out)],
        cwd=ROOT,
        env=settings_env(base_settings),
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = orjson.loads(out.read_bytes())
    assert results["errors"] == {}

    assert results["collector"]["single"]["events_per_s"] > 0
    assert results["collector"]["batch"]["events_per_s"] > 0
    worker = results["worker"]["1"]
    assert worker["events_per_s"] > 0 and worker["events_measured"] > 0 and worker["dead_letters"] == 0
    assert worker["redis_commands_per_s"] > 0
    assert results["ceilings"]["kafka_consumer"]["events_per_s"] > 0
    assert results["ceilings"]["redis_benchmark"]["ops_per_s"] > 0
    assert results["endtoend"]["events_per_s"] > 0
    for part, key in (("latency", "latency_ms"), ("timers", "lateness_ms")):
        figures = results[part][key]
        assert figures["missing"] == 0, (part, figures)
        assert all(figures[p] is not None for p in ("p50", "p95", "p99")), (part, figures)
    memory = results["memory"]
    assert memory["bytes_per_customer"] > 0 and memory["profile_key_bytes"]["median"] > 0
    sql = results["sql"]
    assert sql["recompute_s"] > 0 and sql["staleness_s"] > 0
    assert set(sql["checks"]) == {"worker x1", "end to end"}
    for name, check in sql["checks"].items():
        assert check["match"], (name, check)
        assert sum(row["sql"] for row in check["member_sets"]["segments"].values()) > 0
    assert {t["name"] for t in results["targets"]} >= {"worker events/s (1 process, 10 rules)", "timer lateness p99"}

    assert "| measure | segstream | beside it | target |" in done.stdout
    assert "SQL memberships = segstream's (worker x1) | yes" in done.stdout
    assert bench_topics(base_settings) <= before  # every topic the bench made is gone
