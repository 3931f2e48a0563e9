"""Recommendations on a running engine: worker -> training topic -> trainer -> snapshot -> API and rules.

Real broker and real redis-server; worker, trainer and API as child processes; nothing mocked.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from stream.client import Client
from stream.config import Settings
from tests.e2e.engine import Engine, settings_with_rules
from stream.state.profile import iso, now_ms
from tests.e2e.harness import api_headers, http_json, produce, track

RULES = """
segments:
  - name: premium_affine
    condition: {score: recommended_category, eq: premium}
models:
  min_examples: 20
  rescore_every: 1h
  churn: {enabled: false}
  purchase_propensity: {enabled: false}
  ltv: {enabled: false}
  clusters: {enabled: false}
  recommendations: {k: 5}
"""
PREMIUM = [f"p{i}" for i in range(8)]
BUDGET = [f"b{i}" for i in range(8)]
CUSTOMERS = [f"r{i}" for i in range(20)]  # even: premium shoppers, odd: budget shoppers


def product_event(customer: str, event: str, item: str, ts: int) -> tuple[bytes, dict]:
    category = "premium" if item.startswith("p") else "budget"
    props = {"product_id": item, "category": category}
    return customer.encode(), track(customer, event, properties=props, timestamp=iso(ts), messageId=f"{customer}-{ts}")


def history(seed: int = 3) -> list[tuple[bytes, dict]]:
    """Each customer views, adds and buys mostly products of its group's category."""
    rng = random.Random(seed)
    start = now_ms() - 60_000
    events = []
    for round_ in range(30):
        for i, customer in enumerate(CUSTOMERS):
            event = rng.choices(["Product Viewed", "Product Added", "Order Completed"], [70, 20, 10])[0]
            events.append(product_event(customer, event, rng.choice(PREMIUM if i % 2 == 0 else BUDGET), start + round_ * 100 + i))
    return events


def test_recommendations_are_served_and_a_rule_reads_them(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, snapshot_every_s=0.5)
    eng = Engine(settings).start("worker", "trainer", "api")
    api = Client(eng.api_url)
    try:
        status, body = http_json("GET", f"{eng.api_url}/v1/customers/r0/recommendations", headers=api_headers(settings))
        assert status == 404  # no profile yet

        produce(settings, settings.events_topic, history())
        produce(settings, settings.events_topic, [product_event("r0", "Order Completed", "p0", now_ms())])  # r0 surely bought p0
        deadline = time.monotonic() + 90
        report: dict = {}
        while time.monotonic() < deadline:
            status, info = http_json("GET", f"{eng.api_url}/v1/models", headers=api_headers(settings))
            report = (info or {}).get("report", {}).get("recommendations") or {} if status == 200 else {}
            if report.get("interactions") == 30 * len(CUSTOMERS) + 1:
                break
            time.sleep(0.5)
        assert report.get("interactions") == 30 * len(CUSTOMERS) + 1, f"{report}; trainer: {eng.procs['trainer'].log()[-2000:]}"
        assert report["scoring"] and report["purchases_evaluated"] > 0 and report["model"]["hit_rate_at_k"] is not None
        time.sleep(1.5)  # the API and workers poll the snapshot version every request / second

        answer = api.recommendations("r0", n=5)
        assert answer["source"] == "personal" and answer["model_version"] == report["interactions"]
        served = [row["product_id"] for row in answer["items"]]
        profile = api.customer("r0")
        bought = {e["properties"]["product_id"] for e in profile["recent_events"] if e["event"] == "Order Completed"}
        assert "p0" in bought and not set(served) & bought
        assert len(served) == min(5, 16 - len(bought))
        assert sum(item in PREMIUM for item in served) >= len(served) - 1, answer
        assert all(row["category"] == ("premium" if row["product_id"] in PREMIUM else "budget") for row in answer["items"])
        odd = api.recommendations("r1", n=3)
        assert sum(row["product_id"] in BUDGET for row in odd["items"]) >= 2, odd

        # One more event rescores with the newest snapshot: recommended_category puts premium shoppers in the segment
        # (earlier snapshots, learned from the first interactions only, may have let others in on the way).
        processed = eng.stat("events")
        produce(settings, settings.events_topic, [(c.encode(), track(c, "Page Viewed")) for c in CUSTOMERS])
        eng.wait_events_processed(processed + len(CUSTOMERS))
        members = set(api.members("premium_affine"))
        even = {c for i, c in enumerate(CUSTOMERS) if i % 2 == 0}
        assert len(members & even) >= 8 and len(members - even) <= 1, members
        assert api.customer("r0")["scores"]["recommended_category"]["value"] == "premium"

        status, _ = http_json("GET", f"{eng.api_url}/v1/customers/r0/recommendations?n=0", headers=api_headers(settings))
        assert status == 400
        status, text = http_json("GET", f"{eng.api_url}/v1/customers/nobody/recommendations", headers=api_headers(settings))
        assert status == 404
    finally:
        eng.stop()
