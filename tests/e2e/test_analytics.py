"""Segment analytics end to end: real Tansu broker, redis-server, worker and API.

Events dated in the past (the lateness limit raised for them) make customers enter a segment
with a 50 % holdout; treatment converts 6 of 10 within 3 days, control 2 of 10. The live
changes carry the holdout groups; ``segstream analytics performance topic:<events>`` replays the
events topic and must find exactly those entrants and the conversion rates counted by hand.
The overlap endpoint must flag the copy of the segment and a one-member segment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from stream.client import Client, SegstreamError
from stream.config import Settings
from stream.processes import ROOT, child_env
from stream.rules.holdout import holdout_group
from stream.state import keys
from stream.state.profile import iso, now_ms
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import TopicReader, produce, wait_until
from tests.unit.test_analytics_performance import DAY, history

RULES = """\
segments:
  - name: viewers
    holdout: 50
    condition: {event: Product Viewed, within: 30d}
  - name: viewers_copy
    condition: {event: Product Viewed, within: 29d}
  - name: whales
    condition: {event: Order Completed, within: 30d, sum: {of: revenue, gte: 1000}}
"""


@pytest.fixture
def engine(base_settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    settings = settings_with_rules(
        base_settings, tmp_path / "rules", RULES, allowed_lateness_s=30 * 86_400.0, analytics_min_members=5
    )
    eng = Engine(settings).start("worker", "api")
    yield eng
    eng.stop()


def test_performance_and_overlap_against_the_live_engine(engine: Engine) -> None:
    settings = engine.settings
    t0 = now_ms() - 10 * DAY
    records, _ = history(t0)
    whale = {"type": "track", "event": "Order Completed", "userId": "whale", "timestamp": iso(t0), "properties": {"revenue": 5000}}
    records = sorted([*records, whale], key=lambda r: r["timestamp"])
    produce(settings, settings.events_topic, [(r["userId"].encode(), r) for r in records])
    engine.wait_events_processed(len(records))
    members = engine.redis()
    wait_until(lambda: members.zcard(keys.segment(settings.namespace, "viewers")) == 21, 30, "21 viewers in the member set")

    # The live changes carry each entrant's holdout group.
    changes = TopicReader(settings, settings.changes_topic)
    entered = changes.wait_for(lambda rs: sum(r["segment"] == "viewers" for r in rs) >= 21, 30, "21 viewers entries")
    live = {r["customer_id"]: r["group"] for r in entered if r["segment"] == "viewers" and r["change"] == "entered"}
    changes.close()
    assert len(live) == 21 and all(group == holdout_group(cid, "viewers", 50) for cid, group in live.items())

    with pytest.raises(SegstreamError, match="no performance report yet") as none_yet:
        Client(engine.api_url).performance()
    assert none_yet.value.status == 404
    run = subprocess.run(
        [sys.executable, "-m", "stream.cli", "analytics", "performance", f"topic:{settings.events_topic}",
         "--segment", "viewers", "--within", "3d", "--json", "--save"],
        env=child_env(settings), cwd=ROOT, capture_output=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode()
    printed = orjson.loads(run.stdout)
    saved = Client(engine.api_url).performance()
    assert saved["source"] == f"topic:{settings.events_topic}" and saved["computed_at"]
    assert {k: v for k, v in saved.items() if k not in ("source", "computed_at")} == printed
    viewers = printed["segments"][0]
    assert (viewers["entrants"], viewers["censored"]) == (21, 1)
    conversion = viewers["conversion"]
    assert {arm: (f["count"], f["n"]) for arm, f in conversion["arms"].items()} == {"treatment": (6, 10), "control": (2, 10)}
    assert conversion["difference"] == pytest.approx(0.6 - 0.2)
    assert conversion["lift"] == pytest.approx(0.6 / 0.2 - 1)
    low, high = conversion["difference_ci"]
    assert low < 0.4 < high
    assert viewers["revenue_per_member"]["arms"]["control"]["mean"] == pytest.approx(4.0)

    report = Client(engine.api_url).overlap()
    assert report["sizes"] == {"viewers": 21, "viewers_copy": 21, "whales": 1}
    assert report["matrix"]["viewers"]["viewers_copy"] == 1.0
    warnings = {(w["kind"], tuple(w["segments"])) for w in report["warnings"]}
    assert warnings == {("near_duplicate", ("viewers", "viewers_copy")), ("too_small", ("whales",))}
    assert Client(engine.api_url).overlap(["whales", "viewers"])["segments"] == ["whales", "viewers"]
    with pytest.raises(SegstreamError, match="unknown segments: nope") as refused:
        Client(engine.api_url).overlap(["nope", "viewers"])
    assert refused.value.status == 400

    cli = subprocess.run(
        [sys.executable, "-m", "stream.cli", "analytics", "overlap"], env=child_env(settings), cwd=ROOT, capture_output=True, timeout=60
    )
    assert cli.returncode == 0, cli.stderr.decode()
    assert "viewers & viewers_copy" in cli.stdout.decode() and "too_small" in cli.stdout.decode()
