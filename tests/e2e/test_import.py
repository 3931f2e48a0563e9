"""`segstream import` against the real broker and redis-server: CRM records, the CDNOW order log, resuming."""

from __future__ import annotations

import csv
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from stream.client import Client
from stream.config import Settings
from stream.importer.checkpoint import checkpoint_path, rejected_path
from stream.importer.convert import Converted, Converter
from stream.importer.mapping import load_mapping
from stream.importer.sources import read_rows
from stream.replay import replay
from stream.rules import load_rules
from stream.state.profile import iso, now_ms
from tests.e2e.chaos import start_workers
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import ROOT, settings_env, wait_until

RULES = """segments:
  - name: pro_customers
    condition: {trait: plan, eq: pro}
  - name: cart_abandoners
    condition: {event: Product Added, without: Order Completed, within: 24h}
  - name: cd_repeat_buyers
    condition: {trait: $count.Order Completed, gte: 3}
  - name: cd_big_spenders
    condition: {all: [{trait: $revenue, gte: 200}, {trait: $count.Order Completed, gte: 2}]}
  - name: cd_recent_buyers
    condition: {event: Order Completed, within: 90d, count: {gte: 1}}
"""
CRM_MAPPING = """kind: profiles
name: crm
user_id: customer_id
id: [customer_id]
traits:
  plan: Plan
  age: {column: Age, type: int}
  vip: {column: VIP, type: bool}
  signed_up_at: {column: Created, type: date, format: "%d/%m/%Y"}
"""
CDNOW_MAPPING = """kind: events
name: cdnow
format: csv
csv: {delimiter: whitespace}
user_id: customer_id
event: Order Completed
timestamp: {column: date, format: "%Y%m%d"}
revenue: dollar_value
properties:
  cds: {column: number_of_cds, type: int}
"""
#: The CDNOW purchase log shipped by the PyPI package `lifetimes` (a dev dependency), found without importing it (pandas).
CDNOW = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets" / "CDNOW_master.txt"  # type: ignore[union-attr]


def run_import(settings: Settings, file: Path, mapping: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "import", str(file), "--mapping", str(mapping), *extra],
        env=settings_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def settled(eng: Engine, events: int) -> None:
    """Wait for ``events`` processed, then check no more arrive (every row counted once)."""
    eng.wait_events_processed(events, timeout=180)
    time.sleep(2)
    assert eng.stat("events") == events and eng.stat("duplicates") == 0


def test_crm_records_land_in_profiles(base_settings: Settings, tmp_path: Path) -> None:
    # No enrichment (not under test here); two workers share the 100k identifies once the import is done.
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, match_traits="", enrichment="")
    rows = 100_000
    data = tmp_path / "customers.csv"
    with data.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["customer_id", "Plan", "Age", "VIP", "Created"])
        for i in range(rows):
            age = "x" if i % 20_000 == 7 else str(20 + i % 50)
            out.writerow([f"c{i}", "pro" if i % 10 == 0 else "free", age, "yes" if i % 3 == 0 else "no", f"{1 + i % 28:02d}/03/2021"])
    mapping = tmp_path / "crm.yaml"
    mapping.write_text(CRM_MAPPING)
    eng = Engine(settings).start("api")
    try:
        joined = time.time() * 1000
        start_workers(eng, ["worker", "worker2"])
        eng.wait_partitions_owned(since_ms=joined)
        started = time.monotonic()
        stdout = run_import(settings, data, mapping)
        imported_s = time.monotonic() - started
        assert "100,000 rows: 99,995 accepted, 5 rejected (done)" in stdout, stdout
        assert "  rejected bad_value: 5" in stdout
        rejected = [orjson.loads(line) for line in rejected_path(data).read_bytes().splitlines()]
        assert [(r["row"], r["reason"], r["field"]) for r in rejected] == [(i + 1, "bad_value", "traits.age") for i in range(7, rows, 20_000)]
        settled(eng, 99_995)
        processed_s = time.monotonic() - started
        print(f"\nCRM: {rows:,} rows imported in {imported_s:.1f} s ({rows / imported_s:,.0f} rows/s, process included); "
              f"processed by two workers after {processed_s:.1f} s ({rows / processed_s:,.0f} rows/s end to end)\n{stdout}")
        api = Client(eng.api_url)
        assert api.customer("c42")["traits"] == {"plan": "free", "age": 62, "vip": True, "signed_up_at": "2021-03-15T00:00:00.000Z"}  # normalize.yaml: a time trait
        assert {s["name"]: s["members"] for s in api.segments()}["pro_customers"] == 10_000
        assert "pro_customers" in [s["segment"] for s in api.customer_segments("c90")]

        # An old "Product Added" with no order since: the absence's deadline passed, so it enters at once.
        events = tmp_path / "cart.jsonl"
        events.write_text(orjson.dumps({"who": "c1", "what": "Product Added", "when": iso(now_ms() - 3 * 86_400_000)}).decode() + "\n")
        cart = tmp_path / "cart.yaml"
        cart.write_text("kind: events\nuser_id: who\nevent: {column: what}\ntimestamp: {column: when}\n")
        assert "1 rows: 1 accepted, 0 rejected (done)" in run_import(settings, events, cart)
        wait_until(lambda: "cart_abandoners" in [s["segment"] for s in api.customer_segments("c1")], 30, "c1 in cart_abandoners")
        assert eng.stat("dead_letter:too_late") == 0
    finally:
        eng.stop()


def test_cdnow_orders_resumed_after_a_kill_match_replay(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES, match_traits="")
    data = tmp_path / "CDNOW_master.txt"
    data.write_bytes(CDNOW.read_bytes())
    mapping = tmp_path / "cdnow.yaml"
    mapping.write_text(CDNOW_MAPPING)
    total = sum(1 for _ in read_rows(data, load_mapping(mapping)))
    eng = Engine(settings).start("worker", "api")
    try:
        # A first run stopped by a row limit, a second one killed mid-way, a third one finishing.
        assert "20,000 rows: 20,000 accepted, 0 rejected (stopped early" in run_import(settings, data, mapping, "--limit", "20000")
        killed = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "import", str(data), "--mapping", str(mapping)],
            env=settings_env(settings), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: orjson.loads(checkpoint_path(data).read_bytes())["rows"] >= 35_000, 60, "the second run past row 35,000")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
        stopped_at = orjson.loads(checkpoint_path(data).read_bytes())["rows"]
        assert stopped_at < total
        stdout = run_import(settings, data, mapping)
        assert f"resumed after row {stopped_at:,}" in stdout and f"{total:,} rows: {total:,} accepted, 0 rejected (done)" in stdout, stdout
        assert "was imported already (nothing sent)" in run_import(settings, data, mapping)
        settled(eng, total)
        print(f"\nCDNOW: {total:,} orders; killed after row {stopped_at:,}\n{stdout}")

        mapping_model = load_mapping(mapping)
        converter = Converter(mapping_model, "cdnow", imported_at=0)
        records = []
        for number, row in enumerate(read_rows(data, mapping_model), start=1):
            converted = converter.convert(number, row)
            assert isinstance(converted, Converted)
            records.append(orjson.loads(converted.value))
        ruleset = load_rules(settings.rules_dir)
        expected = replay(records, ruleset, ruleset.policy(settings.history_max_events), until=now_ms())
        wanted = {name: row["members"] for name, row in expected.summary().items()}
        api = Client(eng.api_url)
        for segment in ("cd_repeat_buyers", "cd_big_spenders", "cd_recent_buyers"):
            members = {cid for cid, p in expected.profiles.items() if segment in p.memberships}
            assert set(api.members(segment)) == members, segment
            print(f"{segment}: {len(members):,} members (replay: {wanted.get(segment, 0):,})")
        assert len(expected.profiles) == 23_570
        assert api.customer("00002")["event_counts"] == {"Order Completed": 2}
    finally:
        eng.stop()
