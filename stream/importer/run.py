"""``segstream import FILE --mapping MAPPING.yaml``: rows to the events topic, resumable, with progress and a summary.

Rows go in batches: converted (:mod:`stream.importer.convert`), produced keyed by
customer, and once the broker acknowledged the whole batch, its rejected rows are
appended to ``FILE.rejected.jsonl`` and the checkpoint moves past it
(:mod:`stream.importer.checkpoint`). A re-run after an interruption starts after the
checkpoint and skips records an unfinished batch had already delivered; a re-run of a
finished import sends nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from stream.bench.progress import Progress, bar
from stream.config import Settings
from stream.importer import checkpoint as checkpoints
from stream.importer.checkpoint import Checkpoint, TopicEnds
from stream.importer.convert import Converted, Converter, RowError
from stream.importer.mapping import load_mapping
from stream.importer.sources import BadRow, count_rows, read_rows
from stream.ingest.sink import EnvelopeSink
from stream.kafka import AsyncProducer, ensure_topics
from stream.state.profile import now_ms

#: Rows per batch: produced, acknowledged and checkpointed together.
BATCH_ROWS = 5_000


@dataclass
class Summary:
    """What an import did, over all its runs: rows accepted and rejected (per reason); this run's share and speed."""

    file: Path
    rows: int
    accepted: int
    rejected: dict[str, int]
    done: bool
    this_run: int = 0
    resumed_after: int = 0
    not_resent: int = 0
    seconds: float = 0.0
    rejected_file: Path | None = None
    already_done: bool = False

    def lines(self) -> list[str]:
        """The summary as printed."""
        rejected = sum(self.rejected.values())
        rate = f" ({self.this_run / self.seconds:,.0f} rows/s)" if self.seconds > 0 and self.this_run else ""
        out = []
        if self.already_done:
            out.append(f"{self.file} was imported already (nothing sent); delete {checkpoints.checkpoint_path(self.file)} to import it again")
        elif self.resumed_after:
            out.append(f"resumed after row {self.resumed_after:,}; {self.not_resent:,} records already on the topic were not sent again")
        state = "done" if self.done else "stopped early: run the same command again to continue"
        out.append(f"{self.rows:,} rows: {self.accepted:,} accepted, {rejected:,} rejected ({state})")
        if not self.already_done:
            out.append(f"this run: {self.this_run:,} rows in {self.seconds:.1f} s{rate}")
        for reason, count in sorted(self.rejected.items(), key=lambda kv: -kv[1]):
            out.append(f"  rejected {reason}: {count:,}")
        if rejected and self.rejected_file is not None:
            out.append(f"rejected rows (row, reason, field, message): {self.rejected_file}")
        return out


@dataclass
class _Batch:
    last_row: int = 0
    records: list[Converted] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


async def run_import(
    settings: Settings,
    file: Path,
    mapping_file: Path,
    limit: int | None = None,
    restart: bool = False,
    progress: Progress | None = None,
) -> Summary:
    """Import ``file`` by ``mapping_file`` (at most ``limit`` rows in this run); raises the package's errors with what to do."""
    from stream.ingest.collector import normalization  # the collector's normalization file applies to imports too

    mapping = load_mapping(mapping_file)
    name = mapping.name or mapping_file.stem
    total = count_rows(file, mapping)
    checkpoint_file = checkpoints.checkpoint_path(file)
    expected = checkpoints.fingerprint(file, mapping_file)
    state = None if restart else checkpoints.load(checkpoint_file, expected)
    rejected_file = checkpoints.rejected_path(file)
    if state is not None and state.done:
        return _summary(file, state, rejected_file, already_done=True)
    normalizer = normalization(settings)
    ensure_topics(settings)
    ends = TopicEnds(settings)
    producer = AsyncProducer(settings, **{"message.timeout.ms": 60_000, "linger.ms": 20})
    sink = EnvelopeSink(producer, settings.events_topic, linger_s=0.0)
    started = time.monotonic()
    try:
        resumed = state is not None
        if state is None:
            state = Checkpoint(expected, imported_at=now_ms(), offsets=ends.read())
            checkpoints.save(checkpoint_file, state)
        prefix = f"import:{name}:"
        already = ends.imported_ids(state.offsets, prefix) if resumed else set()
        summary = _summary(file, state, rejected_file)
        summary.resumed_after = state.rows if resumed else 0
        converter = Converter(mapping, name, state.imported_at, normalizer)
        with rejected_file.open("r+b" if resumed and rejected_file.exists() else "wb") as rejects:
            rejects.truncate(state.rejected_bytes)  # rejections of a batch the interruption cut off are written again
            rejects.seek(state.rejected_bytes)
            batch = _Batch()
            for number, row in enumerate(read_rows(file, mapping), start=1):
                if number <= state.rows:
                    continue
                if limit is not None and summary.this_run >= limit:
                    break
                outcome = converter.convert(number, row) if not isinstance(row, BadRow) else RowError(number, "bad_row", "", row.message)
                (batch.errors if isinstance(outcome, RowError) else batch.records).append(outcome)  # type: ignore[arg-type]
                batch.last_row = number
                summary.this_run += 1
                if number - state.rows >= BATCH_ROWS:
                    await _flush(batch, settings, sink, rejects, state, already, summary, ends)
                    checkpoints.save(checkpoint_file, state)
                    batch = _Batch()
                    if progress is not None:
                        _show(progress, state, total, started, summary.this_run)
            else:
                state.done = True
            if batch.last_row:
                await _flush(batch, settings, sink, rejects, state, already, summary, ends)
            checkpoints.save(checkpoint_file, state)
    finally:
        producer.close()
        ends.close()
    if progress is not None:
        _show(progress, state, total, started, summary.this_run)
        if progress.tty:
            print(file=progress.stream)  # end the status line
    done = _summary(file, state, rejected_file)
    done.this_run, done.resumed_after, done.not_resent = summary.this_run, summary.resumed_after, summary.not_resent
    done.seconds = time.monotonic() - started
    return done


async def _flush(
    batch: _Batch,
    settings: Settings,
    sink: EnvelopeSink,
    rejects: BinaryIO,
    state: Checkpoint,
    already: set[str],
    summary: Summary,
    ends: TopicEnds,
) -> None:
    """Send a batch, wait for the broker, then record it: rejected rows, counts, the topic's ends."""
    fresh = [r for r in batch.records if r.message_id not in already]
    summary.not_resent += len(batch.records) - len(fresh)
    await sink.send_many((settings.events_topic, r.key, r.value) for r in fresh)
    for error in batch.errors:
        rejects.write(error.to_bytes() + b"\n")
    rejects.flush()
    counts = Counter(state.rejected)
    counts.update(e.reason for e in batch.errors)
    state.rows, state.accepted, state.rejected = batch.last_row, state.accepted + len(batch.records), dict(counts)
    state.rejected_bytes = rejects.tell()
    state.offsets = ends.read()


def _summary(file: Path, state: Checkpoint, rejected_file: Path, already_done: bool = False) -> Summary:
    return Summary(file, state.rows, state.accepted, dict(state.rejected), state.done, rejected_file=rejected_file, already_done=already_done)


def _show(progress: Progress, state: Checkpoint, total: int, started: float, this_run: int) -> None:
    rate = this_run / max(time.monotonic() - started, 1e-9)
    progress.update(
        f"{bar(state.rows / total if total else 1.0)} {state.rows:,}/{total:,} rows, "
        f"{sum(state.rejected.values()):,} rejected, {rate:,.0f} rows/s"
    )
