"""Buffering changes-topic records into file batches, and when to flush them (pure: no Kafka, no files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream.state.profile import iso, parse_time
from stream.warehouse.layout import ChangeFile


def change_row(record: dict[str, Any], partition: int, offset: int) -> tuple[str, dict[str, Any]]:
    """The UTC date and the row of one change record: ``at`` as ISO UTC, the Kafka position added.

    Raises ``ValueError``, ``KeyError`` or ``TypeError`` when the record is not a change.

    >>> change_row({"id": "a1", "at": "2026-03-01T23:00:00+00:00", "seq": 1}, 2, 7)
    ('2026-03-01', {'id': 'a1', 'at': '2026-03-01T23:00:00.000Z', 'seq': 1, 'partition': 2, 'offset': 7})
    """
    at = str(iso(parse_time(record["at"])))
    return at[:10], {**record, "at": at, "partition": partition, "offset": offset}


@dataclass
class Batch:
    """Rows read since the last flush, per partition in offset order; the offsets read; when the first arrived."""

    rows: dict[int, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    read: dict[int, int] = field(default_factory=dict)
    count: int = 0
    started: float | None = None

    def add(self, partition: int, offset: int, dated: tuple[str, dict[str, Any]] | None, now: float) -> None:
        """Count one record read at ``offset`` (``now``: a monotonic clock) and buffer its dated row, if it has one."""
        self.read[partition] = offset
        self.count += 1
        if self.started is None:
            self.started = now
        if dated is not None:
            self.rows.setdefault(partition, []).append(dated)

    def due(self, now: float, max_rows: int, max_age_s: float) -> bool:
        """Whether to flush: ``max_rows`` read, or the oldest waited ``max_age_s`` seconds."""
        return self.count >= max_rows or (self.started is not None and now - self.started >= max_age_s)

    def files(self) -> dict[ChangeFile, list[dict[str, Any]]]:
        """The files this batch becomes: per partition, its offset range, split by date.

        >>> b = Batch()
        >>> b.add(0, 5, ("2026-03-01", {"offset": 5}), 0.0)
        >>> b.add(0, 6, ("2026-03-02", {"offset": 6}), 0.0)
        >>> [f.relative.as_posix() for f in b.files()]
        ['changes/date=2026-03-01/part-p0-5-6.parquet', 'changes/date=2026-03-02/part-p0-5-6.parquet']
        """
        out: dict[ChangeFile, list[dict[str, Any]]] = {}
        for partition, rows in self.rows.items():
            first, last = rows[0][1]["offset"], rows[-1][1]["offset"]
            for date, row in rows:
                out.setdefault(ChangeFile(partition, first, last, date), []).append(row)
        return out

    def commit_offsets(self) -> dict[int, int]:
        """Per partition, the offset to commit once the files are durable: the last one read + 1."""
        return {partition: offset + 1 for partition, offset in self.read.items()}
