"""Reading the rows of an import file: CSV (any one-character delimiter, or whitespace), JSON lines, Parquet (with DuckDB).

Rows are dicts of column -> value, numbered from 1 (the header is not a row); a line
that is not a row (bad JSON, not an object) is a :class:`BadRow` so the import can
reject it and go on.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream.bench.progress import count_lines
from stream.importer.mapping import CsvOptions, Mapping

_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


class SourceError(ValueError):
    """An import file that cannot be read as the mapping says; the message says what to change."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A line that is not a row, and why."""

    message: str


Row = dict[str, Any] | BadRow


def file_format(path: Path, mapping: Mapping) -> str:
    """The mapping's ``format``, else the one the file name implies."""
    if mapping.format is not None:
        return mapping.format
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise SourceError(f"{path}: cannot tell the format from {path.suffix or 'no suffix'!r}; set format: csv, jsonl or parquet in the mapping") from None


def read_rows(path: Path, mapping: Mapping) -> Iterator[Row]:
    """Every row of ``path`` in file order; raises :class:`SourceError` when a column the mapping reads is missing."""
    fmt = file_format(path, mapping)
    if fmt == "parquet":
        return _parquet(path, mapping)
    if fmt == "jsonl":
        return _jsonl(path)
    return _csv(path, mapping)


def count_rows(path: Path, mapping: Mapping) -> int:
    """How many rows ``path`` has (for CSV, lines: a quoted cell spanning lines makes it an estimate)."""
    if file_format(path, mapping) == "parquet":
        import duckdb

        connection = duckdb.connect()
        try:
            return int(connection.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(path)}).fetchall()[0][0])
        except duckdb.Error as exc:
            raise SourceError(f"{path}: cannot read it as Parquet ({exc}); check the file or set format in the mapping") from None
        finally:
            connection.close()
    header = file_format(path, mapping) == "csv" and mapping.csv.header
    return max(count_lines(path) - header, 0)


def _check_columns(path: Path, mapping: Mapping, columns: list[str]) -> None:
    missing = [c for c in mapping.columns() if c not in columns]
    if missing:
        raise SourceError(f"{path}: no column {', '.join(map(repr, missing))} (named in the mapping); its columns are {columns}")


def _csv(path: Path, mapping: Mapping) -> Iterator[Row]:
    options: CsvOptions = mapping.csv
    with path.open(newline="", encoding="utf-8-sig") as fh:
        lines = (line.split() for line in fh) if options.delimiter == "whitespace" else csv.reader(fh, delimiter=options.delimiter)
        columns = options.columns or []
        if options.header:
            header = next(lines, None)
            if header is None:
                return
            columns = options.columns or [c.strip() for c in header]
        _check_columns(path, mapping, columns)
        for cells in lines:
            if cells:
                yield dict(zip(columns, cells))


def _jsonl(path: Path) -> Iterator[Row]:
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield BadRow(f"not valid JSON ({exc}); each line must be one JSON object")
                continue
            yield row if isinstance(row, dict) else BadRow(f"a JSON {type(row).__name__}, expected an object of column: value")


def _parquet(path: Path, mapping: Mapping) -> Iterator[Row]:
    import duckdb  # late: only Parquet needs it

    connection = duckdb.connect()
    try:
        try:
            cursor = connection.execute("SELECT * FROM read_parquet($p)", {"p": str(path)})
        except duckdb.Error as exc:
            raise SourceError(f"{path}: cannot read it as Parquet ({exc}); check the file or set format in the mapping") from None
        columns = [d[0] for d in cursor.description]
        _check_columns(path, mapping, columns)
        while batch := cursor.fetchmany(10_000):
            for values in batch:
                yield dict(zip(columns, values))
    finally:
        connection.close()
