"""Writing rows as one Parquet file with DuckDB, atomically and durably (temporary name, fsync, rename)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import orjson

#: Columns of a change file (DuckDB types), in order.
CHANGE_COLUMNS = {
    "id": "VARCHAR",
    "customer_id": "VARCHAR",
    "segment": "VARCHAR",
    "change": "VARCHAR",
    "at": "TIMESTAMP",
    "seq": "BIGINT",
    "reason": "VARCHAR",
    "group": "VARCHAR",
    "partition": "INTEGER",
    "offset": "BIGINT",
}

#: Columns of a profile snapshot file (DuckDB types), in order.
PROFILE_COLUMNS = {
    "customer_id": "VARCHAR",
    "segments": "STRUCT(segment VARCHAR, entered_at TIMESTAMP)[]",
    "traits": "JSON",
    "scores": "JSON",
    "event_counts": "JSON",
    "revenue": "DOUBLE",
    "first_seen": "TIMESTAMP",
    "last_seen": "TIMESTAMP",
    "aliases": "VARCHAR[]",
}


def literal(text: str | Path) -> str:
    """``text`` as a SQL string literal.

    >>> literal("it's")
    "'it''s'"
    """
    return "'" + str(text).replace("'", "''") + "'"


def write_parquet(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str], target: Path) -> int:
    """Write ``rows`` (fields outside ``columns`` ignored, missing ones NULL) to ``target``; returns the row count.

    The rows go through a JSON-lines file read by DuckDB's ``read_json`` with the given
    types, then ``COPY ... TO`` a temporary name beside ``target``, which is fsynced and
    renamed over ``target``: readers see the whole file or none, and a rewrite of the
    same name replaces it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = target.parent / f".{target.name}.jsonl.tmp"
    staged = target.parent / f".{target.name}.tmp"
    count = 0
    try:
        with open(lines, "wb") as fh:
            for row in rows:
                fh.write(orjson.dumps(row) + b"\n")
                count += 1
        spec = "{" + ", ".join(f"{literal(name)}: {literal(kind)}" for name, kind in columns.items()) + "}"
        select = ", ".join(f'"{name}"' for name in columns)
        with duckdb.connect() as db:
            db.execute(
                f"COPY (SELECT {select} FROM read_json({literal(lines)}, format = 'newline_delimited', columns = {spec})) "
                f"TO {literal(staged)} (FORMAT PARQUET)"
            )
        fsync(staged)
        os.replace(staged, target)
        fsync(target.parent)
    finally:
        lines.unlink(missing_ok=True)
        staged.unlink(missing_ok=True)
    return count


def fsync(path: Path) -> None:
    """Flush a file's or directory's contents (a directory: its entries, i.e. renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
