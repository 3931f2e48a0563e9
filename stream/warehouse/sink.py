"""The changes sink: the segment-changes topic into Parquet files, offsets committed only once files are durable.

At start it reads its consumer group's committed offsets, deletes the files of
batches that were written but never committed (:func:`stream.warehouse.layout.uncommitted`)
and assigns every partition at the committed offset. It then buffers changes and
flushes on size (``SEGSTREAM_EXPORT_BATCH``) or time (``SEGSTREAM_EXPORT_FLUSH``):
each file is written under a temporary name, fsynced and renamed, and only then
are the offsets committed. A crash before the commit re-reads the same records and
rewrites files named by their offset range: at-least-once delivery, no duplicate
row, no overlapping range. One exporter per directory and group.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from stream.bench.progress import Progress
from stream.config import Settings
from stream.kafka import KafkaUnavailable, client_config, topic_partitions
from stream.state.profile import now_ms
from stream.warehouse.batch import Batch, change_row
from stream.warehouse.errors import WarehouseError
from stream.warehouse.layout import change_files, uncommitted
from stream.warehouse.parquet import CHANGE_COLUMNS, write_parquet
from stream.warehouse.snapshot import write_snapshot

log = logging.getLogger(__name__)


@dataclass
class Totals:
    """What an export run did."""

    records: int = 0
    skipped: int = 0
    files: int = 0
    snapshots: int = 0
    #: Profiles in the latest snapshot.
    profiles: int = 0

    def summary(self) -> str:
        """One line for the user."""
        return (
            f"{self.records:,} changes read ({self.skipped} not changes, skipped), {self.files} change files written, "
            f"{self.snapshots} profile snapshots (the last of {self.profiles:,} profiles)"
        )


class ChangeSink:
    """A consumer of the changes topic, in its own group, writing change files under ``root``."""

    def __init__(self, settings: Settings, root: Path, group: str) -> None:
        self.settings, self.root, self.topic = settings, root, settings.changes_topic
        conf = {"group.id": group, "enable.auto.commit": False, "enable.auto.offset.store": False}
        self.consumer = Consumer(client_config(settings, **conf))

    def resume(self) -> None:
        """Delete the files of uncommitted batches and assign every partition at its committed offset."""
        partitions = self._partitions()
        try:
            found = self.consumer.committed([TopicPartition(self.topic, p) for p in partitions], timeout=30)
        except KafkaException as exc:
            raise WarehouseError(f"cannot read the committed offsets of the export group: {exc}") from exc
        committed = {tp.partition: tp.offset for tp in found if tp.offset >= 0}
        stale = uncommitted(change_files(self.root), committed)
        for file in stale:
            (self.root / file.relative).unlink()
        if stale:
            log.warning("deleted %d change files of batches never committed; their changes are read again", len(stale))
        self.consumer.assign([TopicPartition(self.topic, p, committed.get(p, OFFSET_BEGINNING)) for p in partitions])

    def _partitions(self) -> list[int]:
        try:
            return topic_partitions(self.consumer, self.settings, self.topic)
        except KafkaUnavailable as exc:
            raise WarehouseError(str(exc)) from exc

    def poll(self, timeout: float) -> Message | None:
        """The next record, or ``None`` after ``timeout`` seconds without one."""
        message = self.consumer.poll(timeout)
        if message is None:
            return None
        error = message.error()
        if error is None:
            return message
        if error.retriable():
            return None
        raise WarehouseError(f"reading {self.topic} failed: {error.str()}")

    def flush(self, batch: Batch) -> int:
        """Write the batch's files durably, then commit its offsets; returns the files written."""
        files = batch.files()
        for file, rows in sorted(files.items()):
            write_parquet(rows, CHANGE_COLUMNS, self.root / file.relative)
        self.commit(batch.commit_offsets())
        return len(files)

    def commit(self, offsets: dict[int, int]) -> None:
        """Commit ``offsets`` (partition -> next offset to read) for the group, synchronously."""
        if offsets:
            self.consumer.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()], asynchronous=False)

    def close(self) -> None:
        self.consumer.close()


def dated_row(message: Message) -> tuple[str, dict[str, Any]] | None:
    """The date and row of a change record, ``None`` (logged) when the record is not a change."""
    try:
        return change_row(orjson.loads(message.value() or b""), message.partition(), message.offset())
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        log.error("partition %d offset %d is not a segment change (%s): skipped", message.partition(), message.offset(), exc)
        return None


def export(settings: Settings, root: Path, group: str, once: bool, idle_s: float) -> Totals:
    """Export until SIGTERM/SIGINT (``once``: until the topic was idle for ``idle_s`` seconds), then flush.

    A profile snapshot is written at start and every ``SEGSTREAM_EXPORT_SNAPSHOT_EVERY``
    seconds (``once``: one, at the end).
    """
    totals, progress, batch = Totals(), Progress(), Batch()
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    sink = ChangeSink(settings, root, group)
    try:
        sink.resume()
        last_record = time.monotonic()
        next_snapshot = float("inf") if once else last_record
        while not stopping:
            now = time.monotonic()
            if now >= next_snapshot:
                snapshot(settings, root, totals)
                next_snapshot = time.monotonic() + settings.export_snapshot_every_s
            message = sink.poll(0.2)
            now = time.monotonic()
            if message is not None:
                dated = dated_row(message)
                totals.records += 1
                totals.skipped += dated is None
                batch.add(message.partition(), message.offset(), dated, now)
                last_record = now
            drained = once and now - last_record >= idle_s
            if batch.due(now, settings.export_batch, settings.export_flush_s) or (drained and batch.count):
                totals.files += sink.flush(batch)
                batch = Batch()
                progress.update(f"{totals.records:,} changes read, {totals.files} files written")
            if drained:
                break
        if batch.count:
            totals.files += sink.flush(batch)
        if once:
            snapshot(settings, root, totals)
    finally:
        sink.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return totals


def snapshot(settings: Settings, root: Path, totals: Totals) -> None:
    """Write a profile snapshot now and count it."""
    started = time.monotonic()
    totals.profiles = write_snapshot(settings, root, now_ms())
    totals.snapshots += 1
    log.info("profile snapshot of %d profiles written in %.1fs", totals.profiles, time.monotonic() - started)
