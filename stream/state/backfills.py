"""Progress of a rule version's backfill, as the workers record it in ``ns:backfill:{version}``.

Fields: ``p<n>`` -> customers evaluated in partition ``n``, once that partition is done;
``running:<p>,<p>,…`` -> ``{"scanned": profiles scanned, "evaluated": customers
re-evaluated}`` of a worker still scanning for those partitions (removed when it is done).
Every worker scans all profile keys and keeps the customers of its own partitions, so a
running worker's share done is its ``scanned`` over the number of profiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

RUNNING = "running:"


def done_field(partition: int) -> str:
    """The field marking ``partition`` done."""
    return f"p{partition}"


def running_field(partitions: Iterable[int]) -> str:
    """The field of a worker still backfilling ``partitions``."""
    return RUNNING + ",".join(str(p) for p in sorted(partitions))


def running_value(scanned: int, evaluated: int) -> bytes:
    """The value of a :func:`running_field`."""
    return orjson.dumps({"scanned": scanned, "evaluated": evaluated})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class BackfillProgress:
    """Partitions done (with customers evaluated) and workers still running (partitions -> scanned, evaluated)."""

    done: dict[int, int]
    running: dict[tuple[int, ...], tuple[int, int]]

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes] | Mapping[str, str]) -> BackfillProgress:
        """Read the hash's fields (as ``HGETALL`` returns them)."""
        done: dict[int, int] = {}
        running: dict[tuple[int, ...], tuple[int, int]] = {}
        for raw_key, raw_value in fields.items():
            key, value = _text(raw_key), _text(raw_value)
            if key.startswith(RUNNING):
                parts = tuple(int(p) for p in key[len(RUNNING) :].split(",") if p)
                state = orjson.loads(value)
                running[parts] = (int(state["scanned"]), int(state["evaluated"]))
            elif key.startswith("p") and key[1:].isdigit():
                done[int(key[1:])] = int(value)
        return cls(done, running)

    @property
    def evaluated(self) -> int:
        """Customers re-evaluated so far, in done and running partitions."""
        return sum(self.done.values()) + sum(e for _, e in self.running.values())

    def complete(self, partitions: int) -> bool:
        """Whether every one of ``partitions`` partitions is done."""
        return all(p in self.done for p in range(partitions))

    def fraction(self, partitions: int, profiles: int) -> float:
        """Share of the work done, 0..1, with ``profiles`` profile keys to scan per running worker."""
        share = float(len([p for p in self.done if p < partitions]))
        for parts, (scanned, _) in self.running.items():
            pending = [p for p in parts if p not in self.done]
            share += len(pending) * min(1.0, scanned / profiles if profiles else 1.0)
        return min(1.0, share / partitions) if partitions else 1.0
