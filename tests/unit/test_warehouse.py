"""Warehouse export: file naming and batching, Parquet writing, the members-at-time SQL, snapshot rows."""

from __future__ import annotations

import doctest
import io
from pathlib import Path

import duckdb
import pytest

from stream.state.profile import Profile
from stream.warehouse import batch, layout, parquet, snapshot, sql
from stream.warehouse.batch import Batch, change_row
from stream.warehouse.errors import WarehouseError
from stream.warehouse.layout import ChangeFile, change_files, parse_change_file, uncommitted
from stream.warehouse.parquet import CHANGE_COLUMNS, write_parquet


@pytest.mark.parametrize("module", [batch, layout, parquet, snapshot, sql])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0


def test_file_names_round_trip_and_ignore_other_files() -> None:
    file = ChangeFile(3, 1200, 1399, "2026-03-01")
    assert parse_change_file(Path("/x") / file.relative) == file
    assert parse_change_file(Path("/x/changes/date=2026-03-01/.part-p3-1200-1399.parquet.tmp")) is None
    assert parse_change_file(Path("/x/changes/elsewhere/part-p3-1200-1399.parquet")) is None


def test_uncommitted_files_are_those_from_the_committed_offset_on() -> None:
    files = [
        ChangeFile(0, 0, 9, "2026-03-01"),
        ChangeFile(0, 10, 19, "2026-03-01"),
        ChangeFile(0, 10, 19, "2026-03-02"),  # the same batch, another date
        ChangeFile(1, 0, 4, "2026-03-01"),
        ChangeFile(2, 0, 4, "2026-03-01"),
    ]
    assert uncommitted(files, {0: 10, 1: 5}) == [files[1], files[2], files[4]]


def test_a_batch_splits_by_date_and_commits_past_skipped_records() -> None:
    b = Batch()
    b.add(0, 4, change_row({"id": "a", "at": "2026-03-01T23:59:59.999Z", "seq": 1}, 0, 4), now=10.0)
    b.add(0, 5, change_row({"id": "b", "at": "2026-03-02T00:00:00Z", "seq": 2}, 0, 5), now=11.0)
    b.add(0, 6, None, now=12.0)  # not a change: nothing to write, but read
    b.add(1, 0, change_row({"id": "c", "at": 1772323200000, "seq": 1}, 1, 0), now=12.0)
    files = b.files()
    assert sorted(f.relative.as_posix() for f in files) == [
        "changes/date=2026-03-01/part-p0-4-5.parquet",
        "changes/date=2026-03-01/part-p1-0-0.parquet",
        "changes/date=2026-03-02/part-p0-4-5.parquet",
    ]
    assert [r["id"] for r in files[ChangeFile(0, 4, 5, "2026-03-02")]] == ["b"]
    assert b.commit_offsets() == {0: 7, 1: 1}
    assert b.count == 4


def test_flush_on_size_or_age() -> None:
    b = Batch()
    assert not b.due(now=1e9, max_rows=2, max_age_s=5)  # empty: never
    b.add(0, 0, None, now=100.0)
    assert not b.due(now=104.9, max_rows=2, max_age_s=5)
    assert b.due(now=105.0, max_rows=2, max_age_s=5)
    b.add(0, 1, None, now=101.0)
    assert b.due(now=101.0, max_rows=2, max_age_s=5)


def test_change_row_refuses_what_is_not_a_change() -> None:
    with pytest.raises(KeyError):
        change_row({"id": "x"}, 0, 0)
    with pytest.raises(ValueError):
        change_row({"at": "yesterday"}, 0, 0)


def test_write_parquet_is_typed_atomic_and_replaces_the_same_name(tmp_path: Path) -> None:
    target = tmp_path / ChangeFile(0, 0, 1, "2026-03-01").relative
    rows = [
        {"id": "a", "customer_id": "ann", "segment": "vip", "change": "entered", "at": "2026-03-01T10:00:00.000Z",
         "seq": 1, "reason": "r", "group": None, "partition": 0, "offset": 0, "extra": {"ignored": True}},
        {"id": "b", "customer_id": "ann", "segment": "vip", "change": "exited", "at": "2026-03-01T11:00:00.000Z",
         "seq": 2, "reason": "r", "partition": 0, "offset": 1},
    ]
    assert write_parquet(rows, CHANGE_COLUMNS, target) == 2
    assert write_parquet(rows, CHANGE_COLUMNS, target) == 2  # a rewrite replaces
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temporary file left
    db = duckdb.connect()
    described = db.execute(f"DESCRIBE SELECT * FROM read_parquet('{target}', hive_partitioning = false)").fetchall()
    assert {r[0]: r[1] for r in described} == CHANGE_COLUMNS
    assert db.execute(f"SELECT id, \"group\" FROM read_parquet('{target}') ORDER BY id").fetchall() == [("a", None), ("b", None)]
    assert change_files(tmp_path) == [ChangeFile(0, 0, 1, "2026-03-01")]


def _changes_table(rows: list[tuple[str, str, str, str, int]]) -> duckdb.DuckDBPyConnection:
    """An in-memory ``changes`` table of ``(customer, segment, change, at, seq)`` rows."""
    db = duckdb.connect()
    db.execute('CREATE TABLE changes (customer_id VARCHAR, segment VARCHAR, change VARCHAR, "at" TIMESTAMP, seq BIGINT)')
    db.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?)", rows)
    db.execute(sql.members_at_macro())
    return db


def _members(db: duckdb.DuckDBPyConnection, segment: str, at: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT customer_id FROM members_at(?, ?)", [segment, at]).fetchall()]


def test_members_at_follows_the_last_change_at_or_before_the_time() -> None:
    db = _changes_table([
        ("ann", "cart_abandoners", "entered", "2026-03-01 10:00:00", 1),
        ("ann", "cart_abandoners", "exited", "2026-03-02 09:00:00", 3),
        ("ann", "vip", "entered", "2026-03-01 12:00:00", 2),
        ("bob", "cart_abandoners", "entered", "2026-02-20 08:00:00", 1),
        ("bob", "cart_abandoners", "entered", "2026-02-20 08:00:00", 1),  # delivered twice
        ("cat", "cart_abandoners", "entered", "2026-03-01 23:00:00", 4),
        ("cat", "cart_abandoners", "exited", "2026-03-01 23:30:00", 5),
        ("dan", "cart_abandoners", "entered", "2026-03-03 00:00:00", 1),
        # a republished older change arriving late is ordered by seq, not by arrival
        ("eve", "cart_abandoners", "exited", "2026-03-01 09:00:00", 2),
        ("eve", "cart_abandoners", "entered", "2026-03-01 08:00:00", 1),
    ])
    assert _members(db, "cart_abandoners", "2026-03-01 23:59:59.999") == ["ann", "bob"]
    assert _members(db, "cart_abandoners", "2026-03-01 10:00:00") == ["ann", "bob"]  # at or before: inclusive
    assert _members(db, "cart_abandoners", "2026-03-01 09:59:59.999") == ["bob"]
    assert _members(db, "cart_abandoners", "2026-03-01 23:15:00") == ["ann", "bob", "cat"]
    assert _members(db, "cart_abandoners", "2026-03-03 00:00:00") == ["bob", "dan"]
    assert _members(db, "cart_abandoners", "2026-03-01 08:30:00") == ["bob", "eve"]
    assert _members(db, "vip", "2026-03-05") == ["ann"]
    since = db.execute("SELECT since FROM members_at('cart_abandoners', '2026-03-01 12:00') WHERE customer_id = 'ann'").fetchone()
    assert str(since[0]) == "2026-03-01 10:00:00"


def test_views_need_change_files_and_query_prints_csv(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="segstream export --to .* --once"):
        sql.views(tmp_path)
    rows = [{"id": "a", "customer_id": "ann", "segment": "vip", "change": "entered", "at": "2026-03-01T10:00:00.000Z",
             "seq": 1, "partition": 0, "offset": 0}]
    write_parquet(rows, CHANGE_COLUMNS, tmp_path / ChangeFile(0, 0, 0, "2026-03-01").relative)
    out = io.StringIO()
    assert sql.query(tmp_path, "SELECT customer_id, date FROM members_at('vip', '2026-03-02') JOIN changes USING (customer_id)", out) == 1
    assert out.getvalue() == "customer_id,date\nann,2026-03-01\n"
    with pytest.raises(WarehouseError, match="the query failed"):
        sql.query(tmp_path, "SELECT nope FROM changes", io.StringIO())


def test_snapshot_rows_leave_out_tombstones_and_redirects() -> None:
    assert snapshot.profile_row(Profile("gone", forgotten=1), {}) is None
    assert snapshot.profile_row(Profile("anon", merged_into="ann"), {}) is None
    row = snapshot.profile_row(
        Profile("ann", traits={"plan": "pro"}, memberships={"vip": 1772323200000}, scores={"churn": {"v": 0.2, "m": 7}}),
        {"lead_score": 3.5},
    )
    assert row is not None
    assert row["segments"] == [{"segment": "vip", "entered_at": "2026-03-01T00:00:00.000Z"}]
    assert row["scores"] == {"lead_score": 3.5, "churn": 0.2}
    assert row["traits"] == {"plan": "pro"}


def test_the_readme_sql_answers_who_was_in_cart_abandoners_on_a_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Exporting to the warehouse") : readme.index("## Configuration")]
    block = section[section.index("```sql\n") + 7 :]
    statements = [s for s in block[: block.index("```")].split(";") if s.strip()]

    def change(cid: str, kind: str, at: str, seq: int, offset: int) -> dict[str, object]:
        return {"id": f"{cid}{seq}", "customer_id": cid, "segment": "cart_abandoners", "change": kind, "at": at, "seq": seq,
                "partition": 0, "offset": offset}
    day1 = [change("ann", "entered", "2026-02-28T10:00:00.000Z", 1, 0)]
    day2 = [change("bob", "entered", "2026-03-01T09:00:00.000Z", 1, 1), change("bob", "exited", "2026-03-01T10:00:00.000Z", 2, 2),
            change("cat", "entered", "2026-03-01T20:00:00.000Z", 1, 3), change("ann", "exited", "2026-03-01T21:00:00.000Z", 2, 4)]
    root = tmp_path / "warehouse"
    write_parquet(day1, CHANGE_COLUMNS, root / ChangeFile(0, 0, 4, "2026-02-28").relative)
    write_parquet(day2, CHANGE_COLUMNS, root / ChangeFile(0, 0, 4, "2026-03-01").relative)
    monkeypatch.chdir(tmp_path)
    db = sql.connect(Path("warehouse"))
    answers = [sorted(r[0] for r in db.execute(statement).fetchall()) for statement in statements]
    assert answers == [["cat"], ["ann", "bob", "cat"]]
