"""SDK retries: the same messageId accepted twice (even on different partitions' offsets, or via
the collector twice) affects state once. Real Tansu broker and real redis-server."""

from __future__ import annotations

import base64
from pathlib import Path

from stream.client import Client
from stream.config import Settings
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import http_json, produce, track, wait_until

RULES = "segments:\n  - name: two_orders\n    condition: {event: Order Completed, within: 1d, count: {gte: 2}}\n"


def test_duplicate_message_ids_count_once(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES)
    eng = Engine(settings).start("collector", "worker", "api")
    try:
        order = track("dup-1", "Order Completed", messageId="order-1", properties={"revenue": 10})
        # Straight to Kafka twice (a producer retry), then through the collector twice (an SDK retry).
        produce(settings, settings.events_topic, [(b"dup-1", order), (b"dup-1", order)])
        auth = {"Authorization": "Basic " + base64.b64encode(b"key:").decode()}
        body = {"userId": "dup-1", "event": "Order Completed", "messageId": "order-1", "properties": {"revenue": 10}}
        for _ in range(2):
            status, _ = http_json("POST", f"{eng.collector_url}/v1/track", body, auth)
            assert status == 200
        eng.wait_events_processed(4)
        wait_until(lambda: eng.stat("duplicates") == 3, 30, "3 duplicates counted")
        api = Client(eng.api_url)
        profile = api.customer("dup-1")
        assert profile["event_counts"] == {"Order Completed": 1} and profile["revenue"] == 10
        assert api.customer_segments("dup-1") == []  # one order, not two

        produce(settings, settings.events_topic, [(b"dup-1", {**order, "messageId": "order-2"})])
        wait_until(lambda: [s["segment"] for s in api.customer_segments("dup-1")] == ["two_orders"], 30, "a second, distinct order")
        assert api.customer("dup-1")["event_counts"] == {"Order Completed": 2}
    finally:
        eng.stop()
