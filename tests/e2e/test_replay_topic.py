"""`segstream replay topic:NAME --out-topic T` on the real broker: history in, the live system's changes out."""

from __future__ import annotations

import subprocess
import sys

from stream.config import Settings
from tests.e2e.harness import ROOT, TopicReader, produce, settings_env, track


def test_replay_reads_a_topic_and_publishes_changes(settings: Settings) -> None:
    orders = [(b"r1", track("r1", "Order Completed", timestamp=f"2026-01-0{day}T00:00:00Z")) for day in (1, 2)]
    produce(settings, settings.events_topic, [*orders, (b"r2", b"not json")])
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "replay", f"topic:{settings.events_topic}",
         "--rules", str(ROOT / "rules" / "behaviour.yaml"), "--until", "2026-03-01T00:00:00Z",
         "--out-topic", settings.changes_topic],
        env=settings_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 customers, 4 changes, 1 rejected records" in done.stdout
    reader = TopicReader(settings, settings.changes_topic)
    records = reader.wait_for(lambda r: len(r) >= 4, 30, "the replayed changes")
    assert [(r["segment"], r["change"], r["at"]) for r in sorted(records, key=lambda r: r["seq"])] == [
        ("recent_buyers", "entered", "2026-01-01T00:00:00.000Z"),
        ("repeat_buyers", "entered", "2026-01-02T00:00:00.000Z"),
        ("repeat_buyers", "exited", "2026-01-31T00:00:00.000Z"),
        ("recent_buyers", "exited", "2026-02-01T00:00:00.000Z"),
    ]
    reader.close()
