"""Time and rule changes on a running engine: backfill on deploy, timers across a SIGKILL.

Real Tansu broker and real redis-server; nothing mocked.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis

from stream.client import Client
from stream.config import Settings
from stream.rules import load_rules
from stream.state import keys
from stream.state.backfills import BackfillProgress
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import ROOT, TopicReader, api_headers, http_json, produce, settings_env, track, wait_until

def send(settings: Settings, events: list[tuple[str, str]]) -> None:
    """Produce (customer, event name) tracks straight to the events topic, keyed by customer."""
    produce(settings, settings.events_topic, [(cid.encode(), track(cid, name)) for cid, name in events])

def changes(records: list[dict], segment: str, change: str) -> set[str]:
    return {r["customer_id"] for r in records if r["segment"] == segment and r["change"] == change}

BUYERS = "segments:\n  - name: buyers\n    condition: {event: Order Completed, within: 1d}\n"
VIEWERS = "segments:\n  - name: viewers\n    condition: {event: Product Viewed, within: 1d, count: {gte: 2}}\n"

def test_deployed_rule_is_backfilled_and_removed_rule_exits_its_members(base_settings: Settings, tmp_path: Path) -> None:
    second = tmp_path / "v2"
    second.mkdir()
    (second / "viewers.yaml").write_text(VIEWERS)
    settings = settings_with_rules(base_settings, tmp_path / "v1", BUYERS)
    buyers = [f"b{i}" for i in range(20)]
    viewers = [f"v{i}" for i in range(30)]
    eng = Engine(settings).start("worker", "api")
    try:
        send(settings, [(c, "Order Completed") for c in buyers] + [(c, "Product Viewed") for c in viewers * 2])
        eng.wait_events_processed(len(buyers) + 2 * len(viewers))
        reader = TopicReader(settings, settings.changes_topic)
        reader.wait_for(lambda r: changes(r, "buyers", "entered") == set(buyers), 30, "buyers entered")

        deploy = subprocess.run(
            [sys.executable, "-m", "stream.cli", "rules", "deploy", str(second), "--wait", "--timeout", "60"],
            env=settings_env(settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert deploy.returncode == 0, deploy.stderr
        assert "deployed" in deploy.stdout
        # --wait returns once every partition is backfilled, and shows how far it got meanwhile.
        assert f"/{settings.partitions} partitions" in deploy.stderr, deploy.stderr
        last = deploy.stderr.strip().splitlines()[-1]
        assert "100.0%" in last and "done" in last and "customers re-evaluated" in last, deploy.stderr
        done = redis.Redis.from_url(settings.redis_url).hgetall(keys.backfill(settings.namespace, load_rules(second).version))
        assert BackfillProgress.from_fields(done).complete(settings.partitions), done

        # No new event: the backfill alone decides these changes.
        reader.wait_for(
            lambda r: changes(r, "viewers", "entered") == set(viewers) and changes(r, "buyers", "exited") == set(buyers),
            60,
            f"backfill changes; worker: {eng.worker_log()}",
        )
        api = Client(eng.api_url)
        wait_until(lambda: [s["name"] for s in api.segments()] == ["viewers"], 10, "the API on the new rules")
        status, body = http_json("GET", f"{eng.api_url}/v1/rules", headers=api_headers(settings))
        assert status == 200 and body["segments"] == ["viewers"]
        assert body["backfill"]["partitions_done"] == list(range(settings.partitions))
        assert sorted(api.members("viewers")) == sorted(viewers)
        assert api.customer_segments("b0") == []
        why = api.explain("v0", "viewers")
        assert why["holds"] is True and why["member"] is True and why["deadline"]
        assert why["condition"]["kind"] == "event" and len(why["condition"]["events"]) == 2

        # Live traffic after the deploy is evaluated with the new rules.
        send(settings, [("late", "Product Viewed"), ("late", "Product Viewed")])
        reader.wait_for(lambda r: "late" in changes(r, "viewers", "entered"), 30, "a live entry under new rules")
        # Every change exactly once per (customer, seq), ids unique.
        by_id = {r["id"]: r for r in reader.records}
        assert len({(r["customer_id"], r["seq"]) for r in by_id.values()}) == len(by_id)
        reader.close()
    finally:
        eng.stop()

def test_timer_survives_sigkill_of_its_worker(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(
        base_settings, tmp_path, "segments:\n  - name: hot\n    condition: {event: Product Viewed, within: 6s, count: {gte: 2}}\n"
    )
    eng = Engine(settings).start("worker")
    try:
        send(settings, [("t1", "Product Viewed"), ("t1", "Product Viewed")])
        reader = TopicReader(settings, settings.changes_topic)
        reader.wait_for(lambda r: "t1" in changes(r, "hot", "entered"), 30, "the entry")
        entered_at = time.time()
        eng.procs["worker"].kill()
        eng.start("worker")  # waits until the new worker owns every partition
        assert time.time() - entered_at > 6, "restart was quicker than the window; the timer was not tested"
        [exited] = reader.wait_for(lambda r: changes(r, "hot", "exited"), 30, "the exit after the restart")[1:]
        assert exited["seq"] == 2 and "count(Product Viewed" in exited["reason"]
        reader.close()
    finally:
        eng.stop()

def test_absence_trigger_fires_when_the_time_passes_with_no_event(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(
        base_settings,
        tmp_path,
        "segments:\n  - name: cart_abandoners\n    condition: {event: Product Added, without: Order Completed, within: 3s}\n",
    )
    eng = Engine(settings).start("worker")
    try:
        send(settings, [("ann", "Product Added"), ("ben", "Product Added")])
        sent = time.time()
        time.sleep(0.01)  # a cancelling event must come after the trigger, not in the same millisecond
        send(settings, [("ben", "Order Completed")])
        reader = TopicReader(settings, settings.changes_topic)
        reader.wait_for(lambda r: "ann" in changes(r, "cart_abandoners", "entered"), 30, "ann's abandonment")
        assert time.time() - sent >= 2.5, "entered before the 3 s had passed"
        [entered] = [r for r in reader.records if r["customer_id"] == "ann"]
        assert "Order Completed" in entered["reason"]
        # Ann leaves when she orders; Ben, who ordered in time, never entered.
        send(settings, [("ann", "Order Completed")])
        reader.wait_for(lambda r: "ann" in changes(r, "cart_abandoners", "exited"), 30, "ann's exit on ordering")
        reader.poll(1.0)
        assert "ben" not in {r["customer_id"] for r in reader.records}
        reader.close()
    finally:
        eng.stop()
