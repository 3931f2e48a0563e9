"""Observability end to end: /metrics, /healthz, /readyz of collector, worker and API, JSON logs,
``segstream status --json`` and ``segstream tail --json`` against the real broker and redis-server."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING

from stream.config import Settings
from stream.kafka import read_topic
from stream.observability.exposition import parse_samples
from stream.processes import ROOT, child_env, free_port
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import Proc, api_headers, http_json, produce, wait_until

RULES = """segments:
  - name: buyers
    condition: {event: Order Completed, within: 30d}
  - name: hot
    condition: {event: View, within: 3s}
"""
BUYERS = ["m-alice", "m-bob", "m-carol"]


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    request = urllib.request.Request(f"{url}/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_samples(answer.read().decode())


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def json_lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_metrics_health_status_and_tail(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, worker_port=free_port(), log_format="json")
    worker_url = f"http://127.0.0.1:{settings.worker_port}"
    engine = Engine(settings).start()
    tail = Proc("tail", settings, ["tail", "--json", "--segment", "buyers"]).start()
    try:
        for url in (engine.collector_url, engine.api_url, worker_url):
            wait_until(lambda u=url: urllib.request.urlopen(f"{u}/readyz", timeout=5).status == 200, 30, f"{url}/readyz")
            assert http_json("GET", f"{url}/healthz")[0] == 200
        time.sleep(3)  # tail resolves the end of the topic before the changes come

        batch = [{"type": "track", "userId": c, "event": "Order Completed", "properties": {"revenue": 5}} for c in BUYERS]
        batch.append({"type": "track", "userId": "m-hot", "event": "View"})
        status, _ = http_json("POST", f"{engine.collector_url}/v1/batch", {"batch": batch}, {"Authorization": "Basic bTo="})
        assert status == 200
        produce(settings, settings.events_topic, [(b"m-broken", b"not json")])
        engine.wait_events_processed(len(batch))
        wait_until(lambda: engine.stat("dead_letter:invalid_json") == 1, 30, "the broken record dead-lettered")

        collector = scrape(engine.collector_url, api_headers(settings))
        assert value(collector, "segstream_collector_events_total", type="track") == len(batch)
        assert value(collector, "segstream_collector_requests_total") >= 1
        assert urllib.request.urlopen(f"{engine.collector_url}/readyz", timeout=5).status == 200

        # m-hot enters "hot" and leaves 3 s later on a timer: the lateness histogram sees it.
        wait_until(lambda: value(scrape(worker_url), "segstream_timer_lateness_seconds_count") >= 1, 30, "a timer decision")
        worker = scrape(worker_url)
        assert value(worker, "segstream_worker_events_total") == len(batch) + 1
        assert value(worker, "segstream_worker_dead_letters_total", reason="invalid_json") == 1
        assert value(worker, "segstream_processing_latency_seconds_count") == len(batch) + 1
        assert value(worker, "segstream_processing_latency_seconds_bucket", le="+Inf") == len(batch) + 1
        assert value(worker, "segstream_timer_lateness_seconds_bucket", le="+Inf") >= 1
        assert value(worker, "segstream_worker_partitions") == settings.partitions
        lag = {dict(labels)["partition"]: v for (name, labels), v in worker.items() if name == "segstream_consumer_lag"}
        assert sorted(lag) == [str(p) for p in range(settings.partitions)] and all(v >= 0 for v in lag.values())
        positions = sum(v for (name, _), v in worker.items() if name == "segstream_consumer_position")
        records = list(read_topic(settings, settings.events_topic, OFFSET_BEGINNING, idle_s=1.0))
        assert positions == len(records) >= 2  # every record fetched (an envelope is one record)

        api = scrape(engine.api_url, api_headers(settings))
        assert value(api, "segstream_segment_members", segment="buyers") == len(BUYERS)
        assert value(api, "segstream_segment_members", segment="hot") == 0
        assert value(api, "segstream_events_total") == len(batch)
        assert value(api, "segstream_dead_letters_total", reason="invalid_json") == 1

        run = subprocess.run(
            [sys.executable, "-m", "stream.cli", "status", "--json", "--worker", worker_url],
            env=child_env(settings), cwd=ROOT, capture_output=True, timeout=60,
        )
        assert run.returncode == 0, run.stderr.decode()
        summary = orjson.loads(run.stdout)
        assert summary["kafka"]["topics"][settings.events_topic] == settings.partitions
        assert summary["redis"]["segments"] == {"buyers": len(BUYERS), "hot": 0}
        assert sorted(p for w in summary["redis"]["workers"] for p in w["partitions"]) == list(range(settings.partitions))
        assert summary["redis"]["rules"]["version"]
        assert sorted(summary["lag"][0]["lag"]) == sorted(lag)

        def tailed() -> list[dict]:
            return [r for r in json_lines(tail.log()) if "customer_id" in r]

        wait_until(lambda: {r["customer_id"] for r in tailed()} >= set(BUYERS), 30, f"tail to show the changes: {tail.log()}")
        assert all(r["segment"] == "buyers" and r["change"] == "entered" for r in tailed())

        again = subprocess.run(
            [sys.executable, "-m", "stream.cli", "tail", "--from-beginning", "--customer", "m-hot", "--idle", "3"],
            env=child_env(settings), cwd=ROOT, capture_output=True, timeout=60,
        )
        assert again.returncode == 0, again.stderr.decode()
        lines = again.stdout.decode().splitlines()
        assert [line.split("  ")[1:4] for line in lines] == [["m-hot", "entered", "hot"], ["m-hot", "exited", "hot"]]
    finally:
        tail.stop()
        engine.stop()
    logs = {name: json_lines(engine.procs[name].log_path.read_text(errors="replace")) for name in ("collector", "worker", "api")}
    for name, records in logs.items():
        assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records), name
    assert any(r["logger"] == "stream.worker" and r["message"].startswith("worker metrics on") for r in logs["worker"])
    assert any(r["logger"].startswith("faust") for r in logs["worker"])  # faust's own lines are JSON too
