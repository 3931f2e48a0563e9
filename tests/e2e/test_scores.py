"""Scores on a running engine: a decaying score leaves its segment with no new event; the trainer
learns from workers' training records, publishes snapshots, and resumes exactly once after SIGKILL.

Real Tansu broker and real redis-server; nothing mocked.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from stream.config import Settings
from stream.state.profile import parse_time
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import ROOT, Proc, TopicReader, api_headers, http_json, produce, settings_env, track, wait_until

RULES = """
scores:
  - name: lead
    half_life: 2s
    points:
      - {event: Product Added, points: 6}
segments:
  - name: hot
    condition: {score: lead, gte: 10}
  - name: scored
    condition: {score: churn, gte: 0}
models:
  min_examples: 10
  sample_every: 100ms
  rescore_every: 1h
  churn: {horizon: 1s}
  purchase_propensity: {horizon: 1s}
  ltv: {horizon: 1s}
  clusters: {k: 2}
"""


def send(settings: Settings, events: list[tuple[str, str]]) -> None:
    """Produce (customer, event name) tracks to the events topic, keyed by customer."""
    produce(settings, settings.events_topic, [(cid.encode(), track(cid, name)) for cid, name in events])


def of(records: list[dict], segment: str, change: str) -> dict[str, dict]:
    return {r["customer_id"]: r for r in records if r["segment"] == segment and r["change"] == change}


def test_decaying_score_enters_then_exits_with_no_new_event(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES)
    eng = Engine(settings).start("worker")
    try:
        send(settings, [("lead-1", "Product Added"), ("lead-1", "Product Added"), ("lead-2", "Product Added")])
        reader = TopicReader(settings, settings.changes_topic)
        # 12 points enter hot (>= 10); halving every 2 s they fall below 10 after about 0.53 s.
        records = reader.wait_for(lambda r: "lead-1" in of(r, "hot", "exited"), 30, f"hot exited; {eng.worker_log()}")
        entered, exited = of(records, "hot", "entered")["lead-1"], of(records, "hot", "exited")["lead-1"]
        held_ms = parse_time(exited["at"]) - parse_time(entered["at"])
        assert 400 <= held_ms <= 2000, held_ms
        assert exited["seq"] == entered["seq"] + 1 and "score lead" in exited["reason"]
        assert "lead-2" not in of(records, "hot", "entered")  # 6 points never reach 10
        reader.close()
    finally:
        eng.stop()


def test_trainer_learns_scores_reach_profiles_and_resume_is_exactly_once(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, snapshot_every_s=0.5)
    eng = Engine(settings).start("worker", "trainer", "api")
    customers = [f"m{i}" for i in range(30)]
    try:
        # Round 1: one event each opens examples; their 1 s horizons pass with no event (timers label them).
        send(settings, [(c, "Product Viewed") for c in customers])
        wait_until(
            lambda: ((models(eng) or {}).get("report") or {}).get("churn", {}).get("scoring"),
            60,
            f"a snapshot with a churn model; trainer: {eng.procs['trainer'].log()[-2000:]}",
        )
        time.sleep(1.5)  # workers poll the snapshot version every second

        # The trainer is killed and restarted: it resumes from the offset saved with its state.
        eng.procs["trainer"].kill()
        send(settings, [(c, "Order Completed") for c in customers[:10]] + [(c, "Product Viewed") for c in customers[10:]])
        eng.procs["trainer"] = Proc("trainer", settings, ["trainer"]).start()

        # Round 2 events are scored with the snapshot: the churn score exists, so "scored" holds.
        reader = TopicReader(settings, settings.changes_topic)
        reader.wait_for(lambda r: set(of(r, "scored", "entered")) == set(customers), 60, f"scored entered; {eng.worker_log()}")
        status, profile = http_json("GET", f"{eng.api_url}/v1/customers/m0", headers=api_headers(settings))
        assert status == 200
        churn = profile["scores"]["churn"]
        assert 0 <= churn["value"] <= 1 and churn["model_version"] >= 10
        assert profile["scores"]["lead"] == {"value": 0}

        # Every distinct training record on the topic is learned exactly once across the kill.
        training = TopicReader(settings, settings.training_topic, partitions=1)
        time.sleep(2.5)  # round 2's horizons pass and the trainer snapshots what it read
        distinct = {r["id"]: r for r in training.poll(3.0)}
        examples = [r for r in distinct.values() if r["kind"] != "observation"]
        wait_until(
            lambda: learned(models(eng)) == len(examples),
            30,
            f"the trainer to learn {len(examples)} examples once each (has {learned(models(eng))})",
        )
        training.close()
        reader.close()

        info = models(eng)
        assert info["report"]["churn"]["examples"] >= 30
        status, text = http_text(f"{eng.api_url}/metrics", api_headers(settings))
        assert status == 200 and 'segstream_model_examples{model="churn"}' in text
        cli = subprocess.run(
            [sys.executable, "-m", "stream.cli", "models"], env=settings_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert cli.returncode == 0, cli.stderr
        assert "churn" in cli.stdout and "ROC-AUC" in cli.stdout
    finally:
        eng.stop()


def models(eng: Engine) -> dict | None:
    status, body = http_json("GET", f"{eng.api_url}/v1/models", headers=api_headers(eng.settings))
    return body if status == 200 else None


def learned(info: dict | None) -> int:
    report = (info or {}).get("report") or {}
    return sum(report.get(kind, {}).get("examples", 0) for kind in ("churn", "purchase_propensity", "ltv"))


def http_text(url: str, headers: dict[str, str]) -> tuple[int, str]:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return response.status, response.read().decode()
