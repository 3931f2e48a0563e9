"""Privacy: forgetting a customer through the API and the CLI, with and without suppression.

Real Tansu broker and real redis-server; nothing mocked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from stream.config import Settings
from stream.state import keys
from stream.state.store import read_stored
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import ROOT, TopicReader, api_headers, http_json, produce, settings_env, track, wait_until

RULES = "segments:\n  - name: buyers\n    condition: {event: Order Completed, within: 1d}\n"


def of(records: list[dict], change: str) -> set[str]:
    return {r["customer_id"] for r in records if r["segment"] == "buyers" and r["change"] == change}


def test_forget_exits_segments_erases_data_publishes_deletions_and_suppresses(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES)
    eng = Engine(settings).start("worker", "api")
    try:
        people = ["gone-api", "gone-cli", "kept"]
        produce(settings, settings.events_topic, [(c.encode(), track(c, "Order Completed", traits={"email": f"{c}@x.io"})) for c in people])
        changes = TopicReader(settings, settings.changes_topic)
        changes.wait_for(lambda r: of(r, "entered") == set(people), 30, "all entered buyers")

        status, body = http_json("DELETE", f"{eng.api_url}/v1/customers/gone-api?suppress=true", headers=api_headers(settings))
        assert (status, body["status"], body["suppress"]) == (202, "accepted", True)
        cli = subprocess.run(
            [sys.executable, "-m", "stream.cli", "forget", "gone-cli"], env=settings_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert cli.returncode == 0, cli.stderr

        records = changes.wait_for(lambda r: of(r, "exited") == {"gone-api", "gone-cli"}, 30, f"exits; {eng.worker_log()}")
        exits = [r for r in records if r["change"] == "exited"]
        assert all("forgotten" in r["reason"] for r in exits) and all(r["seq"] == 2 for r in exits)
        deletions = TopicReader(settings, settings.deletions_topic)
        found = deletions.wait_for(lambda r: len(r) == 2, 30, "two deletion records")
        assert {(d["customer_id"], d["suppressed"]) for d in found} == {("gone-api", True), ("gone-cli", False)}

        client = redis.Redis.from_url(settings.redis_url)
        for customer in ("gone-api", "gone-cli"):
            tombstone = read_stored(client.get(keys.profile(settings.namespace, customer)))
            assert tombstone is not None
            assert (tombstone.traits, tombstone.history, tombstone.counts, tombstone.memberships) == ({}, [], {}, {})
            assert client.zscore(keys.segment(settings.namespace, "buyers"), customer) is None
            status, body = http_json("GET", f"{eng.api_url}/v1/customers/{customer}", headers=api_headers(settings))
            assert status == 404 and "forgotten" in body["error"]
        assert http_json("GET", f"{eng.api_url}/v1/customers/kept", headers=api_headers(settings))[0] == 200

        # Later events: suppressed for gone-api, a fresh start for gone-cli (seq continues, ids stay unique).
        produce(settings, settings.events_topic, [(c.encode(), track(c, "Order Completed")) for c in ("gone-api", "gone-cli")])
        records = changes.wait_for(lambda r: len(of(r, "entered")) == 4 or "gone-cli" in {x["customer_id"] for x in r if x["seq"] == 3}, 30, "gone-cli back")
        wait_until(lambda: eng.stat("suppressed") == 1, 30, "one suppressed event")
        again = [r for r in records if r["customer_id"] == "gone-cli" and r["change"] == "entered"]
        assert [r["seq"] for r in again] == [1, 3]
        assert not [r for r in records if r["customer_id"] == "gone-api" and r["seq"] > 2]
        assert http_json("GET", f"{eng.api_url}/v1/customers/gone-api", headers=api_headers(settings))[0] == 404
        # Missing-data monitoring: none of the 5 orders carried properties.revenue.
        assert eng.stat("missing:Order Completed:properties.revenue") == 5
        changes.close()
        deletions.close()
    finally:
        eng.stop()
