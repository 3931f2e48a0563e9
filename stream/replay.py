"""Replay a history with an event-time clock: the live evaluation code, with "now" = event time.

Events are processed in event-time order. Before an event at time ``t`` is applied,
every timer due at or before ``t`` fires at its own deadline, exactly as the live
worker's timers would have. The result is the sequence of changes the live system
would have emitted for that history (with zero processing latency), computed in
memory in seconds. Used by ``segstream replay`` and by tests as the oracle.
"""

from __future__ import annotations

import csv
import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING

from stream import kafka
from stream.config import Settings
from stream.envelope import unpack
from stream.models.lifecycle import Modelling
from stream.models.records import TrainingRecord
from stream.output.changes import Change
from stream.state.profile import HistoryPolicy, Profile, event_time
from stream.worker.processor import Message, Rejected, parse
from stream.worker.step import Evaluator, Step, advance


@dataclass
class ReplayResult:
    """Changes decided, final profiles, and records that could not be used."""

    changes: list[Change] = field(default_factory=list)
    profiles: dict[str, Profile] = field(default_factory=dict)
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per segment: entries, exits and members at the end."""
        entries = Counter(c.segment for c in self.changes if c.change == "entered")
        exits = Counter(c.segment for c in self.changes if c.change == "exited")
        members = Counter(s for p in self.profiles.values() for s in p.memberships)
        names = sorted(entries.keys() | exits.keys() | members.keys())
        return {n: {"entered": entries[n], "exited": exits[n], "members": members[n]} for n in names}


def replay(
    records: Iterable[dict[str, Any]],
    rules: Evaluator,
    policy: HistoryPolicy,
    until: int | None = None,
    progress: Callable[[int], None] | None = None,
    models: Modelling | None = None,
    on_training: Callable[[TrainingRecord], None] | None = None,
) -> ReplayResult:
    """Process ``records`` (events-topic shaped dicts) in event-time order; fire timers up to ``until``.

    With ``models``, customers are scored and their training records are passed,
    as they are decided, to ``on_training`` (a backtest learns from them).
    """
    result = ReplayResult()
    queue: list[tuple[int, int, str, dict[str, Any]]] = []  # (event time, arrival order, customer, record)
    for index, record in enumerate(records):
        try:
            customer, item = parse(Message(0, index, None, orjson.dumps(record)))
        except Rejected as exc:
            result.rejected.append((index, exc))
            continue
        queue.append((item.ts, index, customer, item.record))
    heapq.heapify(queue)
    arrivals = len(queue) + len(result.rejected)
    timers: list[tuple[int, str]] = []

    def collect(step: Step, ts: int) -> None:
        nonlocal arrivals
        result.changes += step.changes
        if on_training is not None:
            for record in step.training:
                on_training(record)
        for routed in step.routed:  # identity merges: the next hop, in event-time order like any event
            heapq.heappush(queue, (max(ts, event_time(routed.value)), arrivals, routed.target, routed.value))
            arrivals += 1

    def fire_until(t: int) -> None:
        while timers and timers[0][0] <= t:
            deadline, cid = heapq.heappop(timers)
            profile = result.profiles[cid]
            if profile.deadline != deadline:
                continue  # superseded by a later evaluation
            collect(advance(profile, [], deadline, rules, policy, models), deadline)
            if profile.deadline is not None:
                heapq.heappush(timers, (profile.deadline, cid))

    done = last = 0
    while queue:
        ts, _, customer, record = heapq.heappop(queue)
        fire_until(ts)
        profile = result.profiles.setdefault(customer, Profile(customer))
        collect(advance(profile, [(record, ts)], ts, rules, policy, models), ts)
        if profile.deadline is not None:
            heapq.heappush(timers, (profile.deadline, customer))
        done, last = done + 1, max(last, ts)
        if progress and done % 10_000 == 0:
            progress(done)
    end = until if until is not None else last
    fire_until(end)
    return result


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Events from a JSON-lines file, or a CSV file whose ``properties.x``/``traits.x`` columns nest."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                yield _nest(row)
        return
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)


def read_topic(settings: Settings, topic: str, idle_s: float = 3.0) -> Iterator[dict[str, Any]]:
    """Every record of ``topic`` from the beginning, until none arrives for ``idle_s`` seconds.

    Envelopes give each of their events. Keys become ``userId`` when a record has neither
    ``userId`` nor ``anonymousId``.
    """
    for message in kafka.read_topic(settings, topic, OFFSET_BEGINNING, idle_s):
        try:
            entries = unpack(message.key(), message.value() or b"")
        except orjson.JSONDecodeError:
            entries = [(None, {"type": "(value is not JSON)"})]
        for key, record in entries:
            if isinstance(record, dict) and key and not (record.get("userId") or record.get("anonymousId")):
                record["userId"] = key.decode(errors="replace")
            yield record


def _nest(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "track"}
    for column, value in row.items():
        if value == "" or column is None:
            continue
        head, _, tail = column.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = _number(value)
        else:
            out[column] = value
    return out


def _number(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text
