"""The worker's processing step, independent of faust: batch in, state and changes out.

For a batch of raw Kafka messages — each one event or an envelope of several
(``stream.envelope``), taken in slices of at most ``SEGSTREAM_BATCH_MAX`` events — the
processor

1. parses each event (one it cannot use goes to the dead-letter topic with the reason);
2. groups them by customer and loads those profiles in one Redis round trip — the write that
   also carries the previous slice's commits, behind the loads: Redis applies them while this
   slice is stepped (a customer they commit continues from the profile just decided);
3. per customer, skips messages whose offset is already applied (redelivery after
   a crash or rebalance), applies the rest, evaluates every rule at "now" and
   decides the membership changes (``stream.output.changes.decide``);
4. commits each customer atomically — profile, applied offsets, outbox — retrying
   customers whose version moved meanwhile;
5. registers each customer's next deadline with the partition's timers;
6. publishes the decided changes (and training records, with models on) and, once
   Kafka acknowledged them, updates the segment member sets and clears the outbox —
   in the background while the next slice is worked on, in order after the
   publications before it; the batch ends when all are done.

Timers and outbox recovery reuse steps 2–6 with no new events. Faust only feeds
batches in (``stream.worker.app``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.config import Settings
from stream.envelope import is_envelope, unpack
from stream.kafka import PARTITION_UA, AsyncProducer, KafkaUnavailable
from stream.models.lifecycle import Modelling
from stream.models.records import TrainingRecord
from stream.observability.worker import WORKER
from stream.output.changes import Change
from stream.output.deletions import FORGET, Deletion
from stream.output.routed import Routed
from stream.state.identity import CLAIM, MERGE_IN, MERGE_OUT
from stream.state.profile import BEHAVIOUR_TYPES, HistoryPolicy, Profile, event_time, iso, now_ms
from stream.state.store import Commit, Loaded, Payload, ProfileStore, Staged
from stream.ingest.quality import missing, parse_critical
from stream.ingest.events import EARLIEST_EVENT_MS, LATEST_EVENT_MS, MAX_DEPTH, too_deep
from stream.worker.enrichment import wants_enrichment
from stream.worker.step import Evaluator, advance

log = logging.getLogger(__name__)

KNOWN_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias", FORGET, MERGE_OUT, MERGE_IN, CLAIM})
_ID = ((str, int), "a non-empty string or an integer")
#: The fields each record type needs: name, the types it may have, and how that reads in errors.
_REQUIRED: dict[str, tuple[tuple[str, tuple[type, ...], str], ...]] = {
    "track": (("event", (str,), "a non-empty string"),),
    "group": (("groupId", *_ID),),
    "alias": (("previousId", *_ID),),
    MERGE_OUT: (("into", *_ID),),
    MERGE_IN: (("from", *_ID), ("state", (dict,), "an object")),
    CLAIM: (("claimant", *_ID),),
}
_MAX_ATTEMPTS = 20
#: Marks a record written by ``segstream import`` (``{"name", "row", "at"}``): history, exempt from the lateness limit.
IMPORT_MARKER = "import"
#: Records the worker routes itself (identity hops), timed by the event they come from.
_HOPS = frozenset({MERGE_OUT, MERGE_IN, CLAIM})


@dataclass(slots=True)  # not frozen: a frozen dataclass takes four times as long to build, once per event
class Message:
    """A raw record of the events topic, or one event of an envelope (``index``, its decoded ``record``)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    index: int | None = None
    record: Any = None


def expand(message: Message) -> list[Message]:
    """The events of a record: itself, or each ``[key, event]`` of an envelope (see :mod:`stream.envelope`).

    An envelope that is not valid JSON, or holds no event, stays whole, for :func:`parse` to reject.
    """
    if not is_envelope(message.value):
        return [message]
    try:
        entries = unpack(message.key, message.value)  # type: ignore[arg-type]
    except orjson.JSONDecodeError:
        return [message]
    if not entries:
        return [message]
    return [Message(message.partition, message.offset, key, None, i, record) for i, (key, record) in enumerate(entries)]


def slices(messages: Sequence[Message], most: int, sizes: list[int]) -> Iterator[list[Message]]:
    """The events of ``messages`` in slices of at most ``most`` events, never splitting a record;
    each record's event count is appended to ``sizes`` as it is expanded.

    A customer's events of one record are applied together: its applied-offset mark
    then always covers whole records.
    """
    part: list[Message] = []
    for message in messages:
        events = expand(message)
        sizes.append(len(events))
        if part and len(part) + len(events) > most:
            yield part
            part = []
        part += events
    if part:
        yield part


@dataclass(slots=True)
class Item:
    """A parsed, usable event."""

    record: dict[str, Any]
    ts: int
    partition: int
    offset: int
    index: int = 0


@dataclass
class Work:
    """What one customer's step processes: its partition and its new events (none for timers)."""

    partition: int
    items: list[Item] = field(default_factory=list)


@dataclass
class Held:
    """A slice whose commits are built but not sent: they go to Redis behind the next slice's load."""

    work: dict[str, Work]
    staged: Staged


class Rejected(ValueError):
    """A record that cannot be processed; ``reason`` is a short code for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def parse(message: Message) -> tuple[str, Item]:
    """The customer id and usable event of a message, or :class:`Rejected` saying why not.

    Records from any producer are checked for everything the step relies on, so that
    odd content is dead-lettered here instead of failing a batch: JSON objects nested at
    most ``MAX_DEPTH`` levels (``too_deep``), a known string ``type`` (``unknown_type``)
    with its required field (``missing_field``; a non-empty string ``event``, ids strings
    or integers, else ``invalid_field``), objects or null where the step reads objects —
    ``context`` and ``context.consent``, ``properties`` of track/page/screen, ``traits`` of
    identify/group, ``context.traits`` of identify, ``state`` of merge_in — (``invalid_field``),
    and an event time from 1970 to 2999 (``bad_timestamp``). Whatever the collector
    accepts passes.
    """
    record = message.record
    if record is None:
        if not message.value:
            raise Rejected("empty_value", "record has no value")
        try:
            record = orjson.loads(message.value)
        except orjson.JSONDecodeError as exc:
            raise Rejected("invalid_json", f"value is not valid JSON: {exc}") from None
    if record == []:
        raise Rejected("not_an_object", "value is an empty JSON array: an envelope without events")
    if not isinstance(record, dict):
        raise Rejected("not_an_object", f"value is a JSON {type(record).__name__}, expected an object")
    # Fewer brackets than MAX_DEPTH cannot nest deeper (counting bytes costs ~0.1 µs, walking ~2 µs).
    value = message.value
    if (value is None or value.count(b"{") + value.count(b"[") > MAX_DEPTH) and (deep := too_deep(record)) is not None:
        raise Rejected("too_deep", f"{deep[:200]} is nested more than {MAX_DEPTH} levels deep (objects and arrays)")
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in KNOWN_TYPES:
        raise Rejected("unknown_type", f"type {repr(kind)[:80]} is not one of {sorted(KNOWN_TYPES)}")
    for required, wanted, shape in _REQUIRED.get(kind, ()):
        value = record.get(required)
        if value is None:
            raise Rejected("missing_field", f"{kind} record has no {required!r}")
        if not isinstance(value, wanted) or isinstance(value, bool) or value == "":
            raise Rejected("invalid_field", f"{kind} record's {required!r} must be {shape}, got {repr(value)[:80]}")
    context = record.get("context")
    inner = context if isinstance(context, dict) else {}
    for name, value in (
        ("properties", record.get("properties") if kind in BEHAVIOUR_TYPES else None),
        ("traits", record.get("traits") if kind in ("identify", "group") else None),
        ("context", context),
        ("context.traits", inner.get("traits") if kind == "identify" else None),
        ("context.consent", inner.get("consent")),
    ):
        if value is not None and not isinstance(value, dict):
            raise Rejected("invalid_field", f"{kind} record's {name!r} must be a JSON object or null, got {repr(value)[:80]}")
    customer = _customer_id(message.key, record)
    try:
        ts = event_time(record)
    except (ValueError, OverflowError) as exc:
        raise Rejected("bad_timestamp", str(exc)[:300]) from None
    if not EARLIEST_EVENT_MS <= ts <= LATEST_EVENT_MS:
        raise Rejected(
            "bad_timestamp",
            f"event time {str(ts)[:24]} (epoch ms) is not between {iso(EARLIEST_EVENT_MS)} and {iso(LATEST_EVENT_MS)}",
        )
    return customer, Item(record, ts, message.partition, message.offset, message.index or 0)


def exempt_from_lateness(record: dict[str, Any]) -> bool:
    """Whether a record counts however old its event time: imported history, and identity hops.

    Imported records carry :data:`IMPORT_MARKER` and no ``receivedAt``. The collector stamps
    ``receivedAt`` on every event it accepts, over any the client sent, so no SDK can send
    a record that passes as imported. Identity hops (claim, merge_out, merge_in) come
    from the worker itself with the time of the event that caused them, which counted.
    """
    if record["type"] in _HOPS:
        return True
    return isinstance(record.get(IMPORT_MARKER), dict) and "receivedAt" not in record


def _customer_id(key: bytes | None, record: dict[str, Any]) -> str:
    if key:
        try:
            return key.decode()
        except UnicodeDecodeError:
            raise Rejected("bad_key", "record key is not UTF-8") from None
    for field_name in ("userId", "anonymousId"):
        value = record.get(field_name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    raise Rejected("missing_customer_id", "record has no key, userId or anonymousId")


def dead_letter_record(settings: Settings, message: Message, error: Rejected) -> bytes:
    """The dead-letter topic's record for a rejected message (the original bytes kept intact when they fit).

    The original value is kept as text when it is UTF-8, else base64. The record stays
    under the producer's 1 MB message limit with its key: a value that would not fit
    (JSON escaping or base64 make it longer) is kept as the base64 of its first bytes,
    with ``"truncated": true``.
    """
    value = message.value or (orjson.dumps(message.record) if message.record is not None else b"")
    budget = 900_000 - len(message.key or b"") - 4_000  # room for the key and the other fields
    try:
        text: str | None = value.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and len(value) * 6 > budget and len(orjson.dumps(text)) > budget:
        text = None  # escaping (\u0000 is 6 bytes) makes it too long
    kept = value if text is not None or len(value) * 4 // 3 + 4 <= budget else value[: max(budget, 0) * 3 // 4]
    return orjson.dumps(
        {
            "reason": error.reason,
            "error": str(error)[:2_000],
            "topic": settings.events_topic,
            "partition": message.partition,
            "offset": message.offset,
            "index": message.index,
            "key": message.key.decode(errors="replace")[:1_000] if message.key else None,
            "value": text,
            "value_base64": None if text is not None else base64.b64encode(kept).decode(),
            "truncated": len(kept) < len(value),
            "at": iso(now_ms()),
        }
    )


class Processor:
    """Applies event batches and fires timers for one worker process."""

    def __init__(
        self,
        settings: Settings,
        rules: Evaluator,
        policy: HistoryPolicy,
        store: ProfileStore,
        producer: AsyncProducer,
        epoch: str,
        clock: Callable[[], int] = now_ms,
        models: Modelling | None = None,
        enrich: Callable[[Profile], None] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.policy = policy
        self.models = models
        self.enrich = enrich  # called with each profile committed after an identify (see stream.worker.enrichment)
        self.store = store
        self.producer = producer
        self.epoch = epoch
        self.clock = clock
        self.lateness_ms = int(settings.allowed_lateness_s * 1000)
        self.critical = parse_critical(settings.critical_fields)
        # One customer step at a time in this process: batches, timers and
        # recovery interleave at await points and must publish in seq order.
        self._lock = asyncio.Lock()
        self.topics = {
            Change: settings.changes_topic,
            TrainingRecord: settings.training_topic,
            Deletion: settings.deletions_topic,
            Routed: settings.events_topic,
        }
        #: Tasks waiting for their :meth:`turn` (a batch lets them in at its next slice).
        self._waiting = 0
        #: The confirmation of the latest publication queued (see :meth:`_publish_later`).
        self._publishing: asyncio.Task[bool] | None = None

    async def handle_batch(self, messages: Sequence[Message]) -> list[int]:
        """Process one poll batch in slices of at most ``batch_max`` events; returns how many events each record held.

        Slices overlap with Redis: a slice's commits are sent behind the next slice's
        load, and Redis applies them while that slice is stepped (see :meth:`_overlapped`).
        A slice's changes are confirmed while the next slice is worked on; the batch
        returns once all are.
        """
        sizes: list[int] = []
        held: Held | None = None
        locked = False
        try:
            for part in slices(messages, self.settings.batch_max, sizes):
                work, counters = await self._parse(part)
                if not locked:
                    await self._lock.acquire()
                    locked = True
                held = await self._overlapped(held, work, counters)
                if self._waiting:  # timers, recovery or a rule change want their turn
                    landing, held = held, None
                    await self._land(landing)
                    self._lock.release()
                    locked = False
            if held is not None:
                landing, held = held, None
                await self._land(landing)
        finally:
            if locked:
                self._lock.release()
        await self.published()
        return sizes

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the processor's lock (one customer step at a time; publications in seq order);
        a batch in progress lets the holder in at its next slice."""
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    async def _parse(self, messages: list[Message]) -> tuple[dict[str, Work], dict[str, int]]:
        """The usable events of a slice grouped by customer, and its data-quality counters;
        dead letters (written at once) for the others."""
        work: dict[str, Work] = {}
        dead: list[tuple[Message, Rejected]] = []
        counters: Counter[str] = Counter()
        oldest = self.clock() - self.lateness_ms
        for message in messages:
            try:
                customer, item = parse(message)
                if item.ts < oldest and not exempt_from_lateness(item.record):
                    raise Rejected(
                        "too_late",
                        f"event time {iso(item.ts)} is more than {self.settings.allowed_lateness_s:g}s before now "
                        "(SEGSTREAM_ALLOWED_LATENESS); import history with `segstream import`",
                    )
            except Rejected as exc:
                dead.append((message, exc))
                continue
            work.setdefault(customer, Work(item.partition)).items.append(item)
            missing(item.record, self.critical, counters)
        if dead:
            await self.dead_letter(dead)
        return work, dict(counters)

    async def _overlapped(self, held: Held | None, work: dict[str, Work], counters: dict[str, int]) -> Held:
        """Step ``work`` while Redis applies ``held``'s commits; returns its own commits, built but not sent.

        One write carries the loads of ``work``'s customers and then ``held``'s commits.
        A customer ``held`` commits is not loaded: it continues from the profile ``held``
        decided, at the version that commit sets. Once stepped, ``held``'s replies are read:
        its committed changes are published, and a customer whose commit was refused (its
        version moved: another writer) is redone from Redis with its events of both slices,
        before anything of this slice is sent.
        """
        now = self.clock()
        before = held.staged if held is not None else None
        committing = {c.customer_id: c.loaded for c in before.commits} if before is not None else {}
        loaded, exchange = await self.store.load_ahead([cid for cid in work if cid not in committing], before)
        try:
            loaded.update((cid, Loaded(committing[cid].version + 1, committing[cid].profile)) for cid in work.keys() & committing.keys())
            commits, unchanged = self._decide(work, loaded, now, counters)
            refused = await self.store.refused(before, exchange)
        finally:
            await exchange.close()
        if held is not None:
            self._committed(held.staged.commits, refused, held.work)
            if refused:
                redo = {cid: Work(held.work[cid].partition, held.work[cid].items + (work[cid].items if cid in work else [])) for cid in refused}
                commits = [c for c in commits if c.customer_id not in redo]
                unchanged = [p for p in unchanged if p.customer_id not in redo]
                await self._settle(redo)
        return Held(work, self.store.stage(commits, now, [c.loaded.profile for c in commits] + unchanged, counters))

    async def _land(self, held: Held) -> None:
        """Send ``held``'s commits and publish what they commit (redoing refused customers)."""
        refused = await self.store.send(held.staged)
        self._committed(held.staged.commits, refused, held.work)
        if refused:
            await self._settle({cid: held.work[cid] for cid in refused})

    async def fire_timers(self, partitions: Iterable[int]) -> int:
        """Re-evaluate customers whose deadline has passed; returns how many.

        The due timers are read without holding the lock, so batches do not wait on it;
        a customer a batch re-evaluated meanwhile is merely evaluated once more.
        """
        due = await self.store.due(partitions, self.clock())
        work = {cid: Work(partition) for partition, customers in due.items() for cid in customers}
        if work:
            async with self.turn():
                await self._settle(work)
            await self.published()
        return len(work)

    async def reevaluate(self, customers: dict[str, int]) -> int:
        """Re-evaluate existing customers (id -> partition) with no new event; returns how many."""
        async with self.turn():
            await self._settle({cid: Work(partition) for cid, partition in customers.items()})
        await self.published()
        return len(customers)

    def use_rules(self, rules: Evaluator, policy: HistoryPolicy, models: Modelling | None) -> None:
        """Evaluate (and learn, with ``models``) by a new rule set from now on (call during a :meth:`turn`)."""
        self.rules, self.policy, self.models = rules, policy, models

    async def recover(self, partitions: Iterable[int], min_age_ms: int = 5000) -> int:
        """Publish outbox entries decided but not confirmed (the deciding process died); returns how many."""
        published = 0
        stale = await self.store.stale_pending(partitions, self.clock() - min_age_ms)
        if not any(stale.values()):
            return 0
        async with self.turn():
            await self.published()  # what is in flight goes first
            for partition, markers in stale.items():
                if not markers:
                    continue
                entries = await self.store.outbox_entries(markers)
                found = [e for e in entries if e is not None]
                gone = [m for m, e in zip(markers, entries) if e is None]
                await self.store.drop_markers(partition, gone)
                found.sort(key=lambda e: (e.customer_id, 0, e.seq, "") if isinstance(e, Change) else (e.customer_id, 1, 0, e.field))
                # Newer changes of these customers may be applied already: member sets follow the profiles.
                profiles = await self.store.load(sorted({e.customer_id for e in found}))
                now_in = {cid: list(entry.profile.memberships) for cid, entry in profiles.items()}
                payloads = [(e, e.to_bytes()) for e in found]
                if not await self._confirm(None, self._queue(payloads), payloads, {e.customer_id: partition for e in found}, now_in):
                    break  # Kafka is away: the next recovery tries again
                published += len(found)
        if published:
            log.warning("republished %d outbox entries decided before a crash", published)
        return published

    async def _settle(self, work: dict[str, Work], counters: dict[str, int] | None = None) -> None:
        """Step ``work``'s customers from their stored profiles, commit and publish; retry those whose version moved."""
        todo = work
        for _ in range(_MAX_ATTEMPTS):
            now = self.clock()
            commits, unchanged = self._decide(todo, await self.store.load(list(todo)), now, counters)
            refused = await self.store.send(self.store.stage(commits, now, [c.loaded.profile for c in commits] + unchanged, counters))
            counters = None  # counted once, whatever the retries
            self._committed(commits, refused, todo)
            if not refused:
                return
            todo = {cid: todo[cid] for cid in refused}
        raise RuntimeError(f"customers {sorted(todo)[:5]} kept changing under this worker; is another one misconfigured?")

    def _decide(
        self, work: dict[str, Work], loaded: dict[str, Loaded], now: int, counters: dict[str, int] | None
    ) -> tuple[list[Commit], list[Profile]]:
        """Step each customer of ``work`` from its loaded profile: what to commit, and the profiles left
        unchanged (their timers are registered all the same); counts events into ``counters``."""
        commits: list[Commit] = []
        unchanged: list[Profile] = []
        for cid, w in work.items():
            entry = loaded[cid]
            if entry.version == 0 and not w.items:
                unchanged.append(Profile(cid, partition=w.partition))  # timer of a deleted profile: drop it
                continue
            before = (entry.profile.deadline, entry.profile.partition)
            if not w.items:
                WORKER.timer_decided(entry.profile.deadline, now)
            fresh = self._unapplied(entry.profile, w)
            step = advance(entry.profile, ((i.record, i.ts) for i in fresh), now, self.rules, self.policy, self.models)
            if counters is not None:
                counters["events"] = counters.get("events", 0) + len(fresh)  # a redelivered record counts once
                for name in ("duplicates", "suppressed"):
                    counters[name] = counters.get(name, 0) + getattr(step, name)
            if fresh or step.changes or step.training or before != (entry.profile.deadline, entry.profile.partition):
                commits.append(Commit(entry, step.changes, step.training, step.deletions, step.routed))
            else:
                unchanged.append(entry.profile)
        return commits, unchanged

    def _committed(self, commits: Sequence[Commit], refused: Sequence[str], work: dict[str, Work]) -> None:
        """Publish (in the background) what the commits not ``refused`` decided; offer identified profiles for enrichment."""
        skip = set(refused)
        done = [c for c in commits if c.customer_id not in skip]
        if self.enrich is not None:
            for c in done:
                if any(wants_enrichment(i.record) for i in work[c.customer_id].items) and c.loaded.profile.merged_into is None:
                    self.enrich(c.loaded.profile)
        self._publish_later(
            [p for c in done for p in c.payloads],
            {c.customer_id: c.loaded.profile.partition or 0 for c in done},
        )

    def _unapplied(self, profile: Profile, work: Work) -> list[Item]:
        """The work's events not applied to ``profile`` before, marking them applied."""
        profile.partition = work.partition
        applied = profile.applied
        prefix = f"{self.epoch}:"
        for key in [k for k in applied if not k.startswith(prefix)]:
            del applied[key]  # offsets of a deleted and re-created topic mean nothing now
        # An event is new when its position (offset, index) follows the last one taken, at first the
        # stored mark's whole offset: an envelope's events share an offset, and a record may come
        # twice in one batch.
        taken: dict[str, tuple[int, float]] = {}
        fresh: list[Item] = []
        for item in work.items:
            key = f"{prefix}{item.partition}"
            position = (item.offset, item.index)
            if position > (taken.get(key) or (applied.get(key, -1), math.inf)):
                taken[key] = position
                applied[key] = item.offset
                fresh.append(item)
        return fresh

    def _queue(self, payloads: list[Payload]) -> asyncio.Future[None]:
        """Hand ``payloads`` to the producer now, in order; the future resolves once Kafka acknowledged all."""
        return self.producer.queue(
            [(self.topics[type(e)], PARTITION_UA, (e.target if isinstance(e, Routed) else e.customer_id).encode(), raw) for e, raw in payloads]
        )

    def _publish_later(self, payloads: list[Payload], partitions: dict[str, int]) -> None:
        """Queue outbox entries for Kafka now and confirm them in the background, after every
        publication queued before (member sets change in seq order): the caller goes on with
        the next slice meanwhile. :meth:`published` waits for them."""
        if payloads:
            self._publishing = asyncio.create_task(self._confirm(self._publishing, self._queue(payloads), payloads, partitions))

    async def published(self) -> None:
        """Wait until every publication queued so far is confirmed; raises what failed (the batch is retried)."""
        task = self._publishing
        if task is None:
            return
        try:
            await task
        finally:
            if self._publishing is task:
                self._publishing = None

    async def _confirm(
        self,
        before: asyncio.Task[bool] | None,
        acked: asyncio.Future[None],
        payloads: list[Payload],
        partitions: dict[str, int],
        memberships: dict[str, list[str]] | None = None,
    ) -> bool:
        """Once ``before`` is confirmed and Kafka acknowledged ``payloads``, update member sets and clear their
        outbox entries; ``False`` when Kafka did not acknowledge (they stay in the outbox for recovery)."""
        if before is not None:
            await before
        try:
            await acked
        except KafkaUnavailable as exc:
            log.error("could not publish %d outbox entries (kept in the outbox): %s", len(payloads), exc)
            return False
        await self.store.confirm_published([e for e, _ in payloads], partitions, memberships)
        return True

    async def dead_letter(self, dead: list[tuple[Message, Rejected]]) -> None:
        """Write rejected messages to the dead-letter topic with their reasons, and count them."""
        topic = self.settings.dead_letter_topic
        await self.producer.send_many(
            (topic, m.key, dead_letter_record(self.settings, m, exc)) for m, exc in dead
        )
        counts: dict[str, int] = {}
        for message, exc in dead:
            name = f"dead_letter:{exc.reason}"
            counts[name] = counts.get(name, 0) + 1
            log.info("dead-lettered partition %d offset %d: %s", message.partition, message.offset, exc)
        WORKER.dead_lettered(counts)
        await self.store.count(**counts)
