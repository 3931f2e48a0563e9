"""Warehouse export end to end: worker -> changes topic -> `segstream export` -> Parquet -> DuckDB SQL.

Real Tansu broker and redis-server; the export runs as its own process, and is
SIGKILLed between writing files and committing offsets to check the re-run leaves
no duplicate and no missing row.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import pytest
from confluent_kafka import OFFSET_BEGINNING

from stream.config import Settings
from stream.kafka import read_topic
from stream.processes import ROOT, child_env
from stream.state import keys
from stream.state.store import read_stored
from stream.warehouse.layout import change_files
from stream.warehouse.sql import connect
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import Proc, produce, track, wait_until

RULES = """\
segments:
  - name: buyers
    condition: {event: Order Completed, within: 30d}
  - name: browsers
    condition: {event: Product Viewed, within: 7d, count: {gte: 2}}
  - name: non_buyers
    condition: {not: {event: Order Completed, within: 30d}}
"""
SEGMENTS = ("buyers", "browsers", "non_buyers")


@pytest.fixture
def engine(base_settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(settings_with_rules(base_settings, tmp_path / "rules", RULES)).start("worker")
    yield eng
    eng.stop()


def send_round(engine: Engine, customers: range, round_: int) -> None:
    """Views for every customer (twice for odd ones), an order for every third; waits until the worker applied them."""
    records = []
    for i in customers:
        cid = f"c{i}"
        for view in range(1 + i % 2):
            records.append((cid.encode(), track(cid, "Product Viewed", messageId=f"{cid}-{round_}-v{view}")))
        if i % 3 == 0:
            records.append((cid.encode(), track(cid, "Order Completed", messageId=f"{cid}-{round_}-o", properties={"revenue": 5})))
    before = engine.stat("events")
    produce(engine.settings, engine.settings.events_topic, records)
    engine.wait_events_processed(before + len(records))
    wait_until(lambda: live_members(engine) == member_sets(engine), 30, "member sets to follow the profiles")


def live_members(engine: Engine) -> dict[str, set[str]]:
    """Each segment's members according to the profiles in Redis."""
    client = engine.redis()
    out: dict[str, set[str]] = {name: set() for name in SEGMENTS}
    for key in client.scan_iter(match=keys.profile_pattern(engine.settings.namespace), count=10_000):
        profile = read_stored(client.get(key))
        for name in profile.memberships if profile else ():
            out[name].add(profile.customer_id)
    return out


def member_sets(engine: Engine) -> dict[str, set[str]]:
    """Each segment's members according to the member sets (updated only once the changes are published)."""
    client = engine.redis()
    return {name: {m.decode() for m in client.zrange(keys.segment(engine.settings.namespace, name), 0, -1)} for name in SEGMENTS}


def export_once(settings: Settings, out: Path, name: str) -> Proc:
    """Run `segstream export --to OUT --once` to its end."""
    proc = Proc(name, settings, ["export", "--to", str(out), "--once", "--idle", "1"]).start()
    assert proc.popen is not None
    assert proc.popen.wait(120) == 0, proc.log()
    return proc


def members_at(db: duckdb.DuckDBPyConnection, segment: str, at: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT customer_id FROM members_at(?, ?)", [segment, at]).fetchall()}


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def topic_positions(settings: Settings) -> set[tuple[int, int]]:
    """Every (partition, offset) of the changes topic, read from the beginning until idle."""
    return {(m.partition(), m.offset()) for m in read_topic(settings, settings.changes_topic, OFFSET_BEGINNING, idle_s=3)}


def assert_exact(db: duckdb.DuckDBPyConnection, out: Path, settings: Settings) -> None:
    """Every record of the topic exported exactly once, and file ranges of a partition never overlap."""
    rows = db.execute('SELECT "partition", "offset" FROM changes').fetchall()
    assert len(rows) == len(set(rows)), "duplicate rows"
    assert set(rows) == topic_positions(settings)
    ranges: dict[int, set[tuple[int, int]]] = {}
    for f in change_files(out):
        ranges.setdefault(f.partition, set()).add((f.first, f.last))
    for partition, spans in ranges.items():
        ordered = sorted(spans)
        assert all(a[1] < b[0] for a, b in zip(ordered, ordered[1:])), (partition, ordered)


def test_members_at_time_from_the_export_equal_live_memberships(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "warehouse"
    before_any = utc_now()
    send_round(engine, range(12), 0)
    middle = utc_now()
    middle_live = live_members(engine)
    send_round(engine, range(6, 24), 1)
    live = live_members(engine)
    assert live != middle_live and all(live.values()), "the rounds must change memberships"

    proc = export_once(engine.settings, out, "export")
    assert "change files written" in proc.log()
    db = connect(out)
    now = utc_now()
    for segment in SEGMENTS:
        assert members_at(db, segment, now) == live[segment], segment
        assert members_at(db, segment, middle) == middle_live[segment], segment
        assert members_at(db, segment, before_any) == set(), segment
    assert db.execute("SELECT count(*) FROM changes WHERE change = 'exited'").fetchone()[0] > 0
    assert_exact(db, out, engine.settings)

    snapshot = db.execute(
        "SELECT customer_id, s.segment FROM profiles, unnest(segments) AS u(s) WHERE snapshot_at = (SELECT max(snapshot_at) FROM profiles)"
    ).fetchall()
    assert {(c, s) for c, s in snapshot} == {(c, s) for s, members in live.items() for c in members}

    # The documented CLI query, and a second run with nothing new: nothing rewritten, nothing doubled.
    files = sorted(f.relative for f in change_files(out))
    export_once(engine.settings, out, "export-again")
    assert sorted(f.relative for f in change_files(out)) == files
    answer = subprocess.run(
        [sys.executable, "-m", "stream.cli", "export", "--to", str(out), "--sql",
         f"SELECT count(*) AS n FROM members_at('buyers', TIMESTAMP '{now}')"],
        env=child_env(engine.settings), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == f"n\n{len(live['buyers'])}\n"


CRASH_BEFORE_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from stream.cli import main
    from stream.warehouse.sink import ChangeSink

    def crash(self, offsets):  # the files of the batch are durable, the offsets not committed
        os.kill(os.getpid(), signal.SIGKILL)

    ChangeSink.commit = crash
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_crash_between_file_write_and_commit_loses_and_doubles_nothing(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "warehouse"
    send_round(engine, range(10), 0)
    export_once(engine.settings, out, "export-1")
    committed_files = {f.relative for f in change_files(out)}

    send_round(engine, range(5, 20), 1)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_BEFORE_COMMIT, "export", "--to", str(out), "--once", "--idle", "1"],
        env=child_env(engine.settings), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode == -9, crashed.stderr
    written = {f.relative for f in change_files(out)} - committed_files
    assert written, "the crashed run wrote its files before the commit"

    # More changes: the re-run's first batch starts where the crashed one did but ends later.
    send_round(engine, range(15, 60), 2)
    proc = export_once(engine.settings, out, "export-2")
    assert "never committed" in proc.log()
    assert written - {f.relative for f in change_files(out)}, "an uncommitted range was replaced by a longer one"

    db = connect(out)
    assert_exact(db, out, engine.settings)
    live = live_members(engine)
    now = utc_now()
    for segment in SEGMENTS:
        assert members_at(db, segment, now) == live[segment], segment
