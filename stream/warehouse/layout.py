"""The export directory's file layout: names derived from Kafka offsets, so a rewrite is never a duplicate.

A change file holds the records of one changes-topic partition in one offset range
``[first, last]`` whose decision time (``at``) falls on one UTC date::

    changes/date=2026-03-01/part-p3-1200-1399.parquet

A batch of one partition spanning several dates gives one file per date, all with
the batch's range. Files are written only from the consumer group's committed
offset on, so every file whose range starts at or after it is from a batch that
was never committed: :func:`uncommitted` finds them, and the sink deletes them
before it resumes there (a crash between writing and committing would otherwise
leave ranges that overlap the ones written next).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

CHANGES = "changes"
PROFILES = "profiles"

_PART = re.compile(r"part-p(\d+)-(\d+)-(\d+)\.parquet")


@dataclass(frozen=True, order=True)
class ChangeFile:
    """The partition and offset range a change file holds, on one date."""

    partition: int
    first: int
    last: int
    date: str

    @property
    def relative(self) -> Path:
        """The path under the export directory.

        >>> ChangeFile(3, 1200, 1399, "2026-03-01").relative.as_posix()
        'changes/date=2026-03-01/part-p3-1200-1399.parquet'
        """
        return Path(CHANGES) / f"date={self.date}" / f"part-p{self.partition}-{self.first}-{self.last}.parquet"


def parse_change_file(path: Path) -> ChangeFile | None:
    """The :class:`ChangeFile` a path names, or ``None`` for any other file (temporary files included)."""
    match = _PART.fullmatch(path.name)
    if match is None or not path.parent.name.startswith("date="):
        return None
    partition, first, last = (int(g) for g in match.groups())
    return ChangeFile(partition, first, last, path.parent.name[len("date=") :])


def change_files(root: Path) -> list[ChangeFile]:
    """Every change file under ``root`` (the export directory), sorted by partition and range."""
    found = (parse_change_file(p) for p in (root / CHANGES).glob("date=*/part-p*.parquet"))
    return sorted(f for f in found if f is not None)


def uncommitted(files: Iterable[ChangeFile], committed: dict[int, int]) -> list[ChangeFile]:
    """The files of a batch never committed: range starting at or after the partition's committed offset.

    ``committed`` maps partition -> next offset to read (a partition absent from it has
    nothing committed, so all its files are uncommitted).

    >>> files = [ChangeFile(0, 0, 9, "2026-03-01"), ChangeFile(0, 10, 14, "2026-03-01")]
    >>> uncommitted(files, {0: 10})
    [ChangeFile(partition=0, first=10, last=14, date='2026-03-01')]
    """
    return [f for f in files if f.first >= committed.get(f.partition, 0)]


def snapshot_dir(snapshot_at: str) -> Path:
    """The directory of one profile snapshot, relative to the export directory (``snapshot_at`` ISO, whole seconds, Z)."""
    return Path(PROFILES) / f"snapshot_at={snapshot_at}"
