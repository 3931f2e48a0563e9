"""Enrichment on a running worker: the shipped lookup enrichers add company and area traits after an
identify, as an identify event of their own, and segments on those traits follow.

Real Tansu broker and real redis-server; the shipped enrichment.yaml and its data files.
"""

from __future__ import annotations

from pathlib import Path

from stream.client import Client
from stream.config import Settings
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import ROOT, produce, track, wait_until

RULES = "segments:\n  - {name: manufacturing, condition: {trait: company.industry, eq: Manufacturing}}\n"


def test_identify_is_enriched_from_the_shipped_lookups(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, enrichment=str(ROOT / "enrichment.yaml"))
    eng = Engine(settings).start("worker", "api")
    try:
        identify = {**track("ann", "x"), "type": "identify", "traits": {"email": "Ann@ACME.com", "postal_code": "sw1a 1aa"}}
        produce(settings, settings.events_topic, [(b"ann", identify)])
        api = Client(eng.api_url)
        wait_until(lambda: "company.name" in api.customer("ann")["traits"], 30, f"enriched traits; worker: {eng.worker_log()}")
        traits = api.customer("ann")["traits"]
        assert (traits["company.name"], traits["company.industry"], traits["area.region"]) == ("Acme Corp", "Manufacturing", "London")
        wait_until(lambda: [s["segment"] for s in api.customer_segments("ann")] == ["manufacturing"], 30, "the segment on an enriched trait")
        assert eng.stat("enrichments") == 1  # the enrichment's own identify is not enriched again
    finally:
        eng.stop()
