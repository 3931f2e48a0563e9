"""The analyst's side: DuckDB views over the export directory and "who was in segment S at time T".

>>> db = connect(Path("warehouse"))                                   # doctest: +SKIP
>>> db.sql("SELECT * FROM members_at('cart_abandoners', TIMESTAMP '2026-03-01 23:59:59')")   # doctest: +SKIP
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import duckdb

from stream.warehouse.errors import WarehouseError
from stream.warehouse.layout import CHANGES, PROFILES
from stream.warehouse.parquet import literal


def members_at_macro() -> str:
    """The DuckDB table macro ``members_at(segment, at)`` over the change log, a table or view named ``changes``.

    A customer is a member at ``at`` iff their last change of that segment at or before
    ``at`` (last by ``seq``, the customer's own order) is ``entered``. Duplicates
    (the same ``id`` delivered twice) have the same ``seq`` and change nothing. The
    answer: ``customer_id``, ``segment``, ``since`` (when that entry was decided).
    (``at`` is a DuckDB keyword: write it ``"at"``.)
    """
    return """
CREATE OR REPLACE MACRO members_at(segment_name, as_of) AS TABLE
SELECT customer_id, segment, "at" AS since
FROM (
    SELECT customer_id, segment, change, "at",
           row_number() OVER (PARTITION BY customer_id, segment ORDER BY seq DESC) AS latest
    FROM changes
    WHERE segment = segment_name AND "at" <= CAST(as_of AS TIMESTAMP)
)
WHERE latest = 1 AND change = 'entered'
ORDER BY customer_id
"""


def views(root: Path) -> list[str]:
    """Statements creating the ``changes`` and (once a snapshot exists) ``profiles`` views over ``root``, and ``members_at``."""
    if not any((root / CHANGES).glob("date=*/*.parquet")):
        raise WarehouseError(
            f"no change files under {root / CHANGES}: run `segstream export --to {root} --once` first (or check --to)"
        )
    statements = [_view(root, CHANGES, "date=*/*.parquet")]
    if any((root / PROFILES).glob("snapshot_at=*/*.parquet")):
        statements.append(_view(root, PROFILES, "snapshot_at=*/*.parquet"))
    return [*statements, members_at_macro()]


def _view(root: Path, name: str, pattern: str) -> str:
    return f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({literal(root / name / pattern)}, hive_partitioning = true)"


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views of :func:`views` over ``root``."""
    db = duckdb.connect()
    for statement in views(root):
        db.execute(statement)
    return db


def query(root: Path, sql: str, out: TextIO) -> int:
    """Run ``sql`` over the views of ``root`` and write the answer to ``out`` as CSV with a header; returns the rows.

    Raises :class:`WarehouseError` with DuckDB's message when the query fails.
    """
    db = connect(root)
    try:
        result = db.execute(sql)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([column[0] for column in result.description or []])
        rows = result.fetchall()
        writer.writerows(rows)
    except duckdb.Error as exc:
        raise WarehouseError(f"the query failed: {exc}") from exc
    finally:
        db.close()
    return len(rows)
