"""A customer's live profile and the pure functions that change it.

A :class:`Profile` is plain data: traits, lifetime counters, the event history
inside the longest window any rule needs, current segment memberships, the
per-customer change sequence and the Kafka offsets already applied. The worker
loads it from Redis, applies a batch of events with :func:`apply_events`,
evaluates the rules and writes it back atomically (see ``stream.state.store``).
Nothing here does I/O, so replay and tests use the very same code.

All times are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import binascii
import bisect
import functools
import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any, NamedTuple

import orjson

#: Event properties kept in history whatever the rules reference, so common
#: commerce aggregates work for rules added later.
STANDARD_PROPERTIES = frozenset(
    {"revenue", "total", "value", "price", "quantity", "product_id", "sku", "category", "currency", "name", "coupon", "discount"}
)

#: Event types that become history entries; identify/group/alias change the profile only.
BEHAVIOUR_TYPES = frozenset({"track", "page", "screen"})


class Event(NamedTuple):
    """One history entry: event time, event name and the kept properties (never mutated).

    Track events are named by their ``event``; page and screen calls are named
    ``page`` and ``screen`` and keep their ``name``/``category`` as properties.
    A tuple, so the thousands a worker decodes per batch are built in C.
    """

    ts: int
    name: str
    props: dict[str, Any] = {}


@dataclass
class Profile:
    """Everything segstream knows about one customer."""

    customer_id: str
    traits: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    revenue: float = 0.0
    first_seen: int | None = None
    last_seen: int | None = None
    history: list[Event] = field(default_factory=list)
    memberships: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    deadline: int | None = None
    partition: int | None = None
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    #: Lifetime time of the latest event of each behaviour name (epoch ms).
    last: dict[str, int] = field(default_factory=dict)
    #: Declared (decaying) scores: name -> ``[value, as_of_ms]`` (see ``stream.rules.scores``).
    points: dict[str, list[float]] = field(default_factory=dict)
    #: Scores from models and RFM: name -> ``{"v": value, "m": model version}`` (see ``stream.models``).
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Open training examples awaiting their label: kind -> example state (see ``stream.models.labels``).
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: When the profile last produced a training observation (epoch ms).
    sampled_at: int | None = None
    #: ``message_key(messageId)`` -> event time of the events applied within the dedup window (see :func:`first_delivery`).
    seen: dict[str, int] = field(default_factory=dict)
    #: When the customer was forgotten (a tombstone: no data but ``seq``, ``applied`` and ``suppressed``).
    forgotten: int | None = None
    #: Whether events for this id are dropped (the suppression list), set by a forget request.
    suppressed: bool = False
    #: Event time at which each trait got its value (per-trait "newest wins" when events or profiles merge).
    trait_times: dict[str, int] = field(default_factory=dict)
    #: The survivor this id was merged into (a redirect: events for it are forwarded there).
    merged_into: str | None = None
    #: Consent per purpose (lower-cased), as the customer's latest event carrying it said (see :func:`apply_consent`).
    consent: dict[str, bool] = field(default_factory=dict)
    #: What a missing trait is read as by rules and features (``models.imputation``: constants, population medians).
    imputed: dict[str, Any] = field(default_factory=dict)
    #: The rule set version every segment was last evaluated under (then only segments an event touches are re-evaluated).
    evaluated: str | None = None

    def to_bytes(self) -> bytes:
        """Serialise for Redis (compact orjson; history as ``[ts, name, props]`` triples)."""
        doc = {
            "id": self.customer_id,
            "t": self.traits,
            "c": self.counts,
            "r": self.revenue,
            "fs": self.first_seen,
            "ls": self.last_seen,
            "h": [[ts, name, props] if props else [ts, name] for ts, name, props in self.history],
            "m": self.memberships,
            "q": self.seq,
            "a": self.applied,
            "d": self.deadline,
            "p": self.partition,
        }
        state = vars(self)
        for short, name in _OPTIONAL.items():
            value = state[name]
            if value or (value is not None and value is not False and value != {} and value != []):
                doc[short] = value
        return orjson.dumps(doc)

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> "Profile":
        """Inverse of :meth:`to_bytes`."""
        d = orjson.loads(raw)
        return cls(
            customer_id=d["id"],
            traits=d["t"],
            counts=d["c"],
            revenue=d["r"],
            first_seen=d["fs"],
            last_seen=d["ls"],
            history=[history_entry(h) for h in d["h"]],
            memberships=d["m"],
            seq=d["q"],
            applied=d["a"],
            deadline=d["d"],
            partition=d["p"],
            **{name: d[short] for short, name in _OPTIONAL.items() if short in d},
        )

    def public(self, points: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The profile as the query API shows it (ISO times, no internals).

        ``points`` are the declared scores' values now (the rules know their decay);
        learned scores come with the version of the model that gave them.
        """
        scores = {name: {"value": value} for name, value in (points or {}).items()}
        scores.update({name: {"value": e.get("v"), "model_version": e.get("m")} for name, e in sorted(self.scores.items())})
        return {
            "customer_id": self.customer_id,
            "traits": self.traits,
            "event_counts": self.counts,
            "revenue": self.revenue,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "segments": sorted(self.memberships),
            "groups": self.groups,
            "aliases": self.aliases,
            "recent_events": [{"at": iso(e.ts), "event": e.name, "properties": e.props} for e in self.history[-20:]],
            "scores": scores,
        }


def history_entry(entry: list[Any]) -> Event:
    """A history entry from its stored ``[ts, name]`` or ``[ts, name, props]``."""
    return _new_event(Event, entry if len(entry) == 3 else (entry[0], entry[1], {}))


_new_event = tuple.__new__

#: Profile fields serialised only when set: short key -> attribute.
_OPTIONAL = {
    "g": "groups",
    "al": "aliases",
    "lt": "last",
    "pt": "points",
    "sc": "scores",
    "ex": "examples",
    "sa": "sampled_at",
    "mi": "seen",
    "fg": "forgotten",
    "su": "suppressed",
    "tt": "trait_times",
    "mg": "merged_into",
    "cn": "consent",
    "im": "imputed",
    "ev": "evaluated",
}

#: How long (event time) a ``messageId`` is remembered: a second event with the same id within it is a duplicate.
DEDUP_WINDOW_MS = 24 * 3_600_000


@dataclass(frozen=True)
class HistoryPolicy:
    """How much history a profile keeps: the rules' longest lookback and the properties they read."""

    horizon_ms: int
    properties: frozenset[str] = STANDARD_PROPERTIES
    max_events: int = 1000
    dedup_ms: int = DEDUP_WINDOW_MS
    #: Traits matched deterministically across customers (see ``stream.state.identity``).
    match_traits: tuple[str, ...] = ("email", "phone")
    #: Traits whose values never reach an outbound topic, and how they are masked (see ``stream.output.pii``).
    pii_traits: tuple[str, ...] = ()
    pii_mode: str = "hash"


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


#: The times ISO 8601 can write: years 1 to 9999 (UTC), in epoch ms.
EARLIEST_MS, LATEST_MS = -62_135_596_800_000, 253_402_300_799_999


#: Below this (epoch ms, year 2106) ``ms / 1000`` as a float is within 0.5 µs of the time, so it names the same millisecond.
_EXACT_MS = 2**32 * 1000


@functools.lru_cache(maxsize=4096)  # a batch's changes share their time; reasons repeat event times
def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC string (``None`` stays ``None``)."""
    if ms is None:
        return None
    if type(ms) is int and 0 <= ms < _EXACT_MS:  # the same text as below, from whole seconds (faster)
        seconds, millis = divmod(ms, 1000)
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> int:
    """An ISO 8601 string or epoch number as epoch milliseconds; naive times are UTC.

    Raises ``ValueError`` naming the value when it is not a time.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return int(value * 1000) if value < 1e11 else int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    raise ValueError(f"not a timestamp: {value!r}")


def event_time(record: dict[str, Any]) -> int:
    """The event time of a record on the events topic: ``ts`` (ms), else ``timestamp``, else ``receivedAt``."""
    ts = record.get("ts")
    if isinstance(ts, int) and not isinstance(ts, bool):
        return ts
    for key in ("timestamp", "receivedAt"):
        if record.get(key) is not None:
            return parse_time(record[key])
    raise ValueError("record has neither 'ts', 'timestamp' nor 'receivedAt'")


def history_name(record: dict[str, Any]) -> str:
    """The name a behavioural record gets in history (see :class:`Event`)."""
    kind = record["type"]
    return record["event"] if kind == "track" else kind


def event_props(record: dict[str, Any]) -> dict[str, Any]:
    """A behavioural record's properties (a new dict); page and screen calls add their ``name`` and ``category``."""
    props = dict(record.get("properties") or {})
    if record["type"] != "track":
        for key in ("name", "category"):
            if record.get(key) is not None:
                props.setdefault(key, record[key])
    return props


def revenue_of(props: dict[str, Any]) -> float:
    """Revenue carried by an event, as Segment's e-commerce spec names it (``revenue``, else ``total``)."""
    for key in ("revenue", "total"):
        value = props.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return 0.0


def apply_event(profile: Profile, record: dict[str, Any], ts: int, policy: HistoryPolicy) -> None:
    """Apply one validated events-topic record (with event time ``ts``) to ``profile`` in place."""
    kind = record["type"]
    if kind == "identify":
        traits = record.get("traits") or (record.get("context") or {}).get("traits")
        times = profile.trait_times
        for name, value in (traits or {}).items():
            if ts >= times.get(name, ts):  # newest wins per trait, by event time
                profile.traits[name] = value
                times[name] = ts
    elif kind == "group":
        profile.groups.setdefault(str(record["groupId"]), {}).update(record.get("traits") or {})
    elif kind == "alias":
        previous = str(record["previousId"])
        if previous not in profile.aliases:
            profile.aliases.append(previous)
    if profile.first_seen is None or ts < profile.first_seen:
        profile.first_seen = ts
    if profile.last_seen is None or ts > profile.last_seen:
        profile.last_seen = ts
    if kind not in BEHAVIOUR_TYPES:
        return
    name = history_name(record)
    props = event_props(record)
    profile.counts[name] = profile.counts.get(name, 0) + 1
    if ts > profile.last.get(name, ts - 1):
        profile.last[name] = ts
    total = profile.revenue + revenue_of(props)
    if math.isfinite(total):  # 1e308 twice would overflow: such an amount is not counted
        profile.revenue = total
    properties = policy.properties
    kept = {k: v for k, v in props.items() if k in properties and (v is None or isinstance(v, _SCALARS))}
    history, event = profile.history, _new_event(Event, (ts, name, kept))
    if not history or history[-1].ts <= ts:  # the usual case: events arrive in time order
        history.append(event)
    else:
        bisect.insort(history, event, key=_TS)


def first_delivery(profile: Profile, record: dict[str, Any], ts: int) -> bool:
    """Whether ``record`` (event time ``ts``) is new to the profile: ``False`` for a ``messageId`` already applied.

    SDKs retry: the same event may be accepted twice under one ``messageId``. Ids are
    remembered for :data:`DEDUP_WINDOW_MS` of event time (at most ``max_events`` of them,
    see :func:`trim_history`); records without a ``messageId`` are always new.
    """
    message_id = record.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return True
    key = message_key(message_id)
    if key in profile.seen:
        return False
    profile.seen[key] = ts
    return True


def message_key(message_id: str) -> str:
    """What a profile remembers of a ``messageId``: 72 bits of its BLAKE2 digest (12 characters
    instead of a 36-character UUID; a collision within one customer's day is ~1 in 10^19)."""
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=9).digest()
    return binascii.b2a_base64(digest, newline=False).decode()


def apply_consent(profile: Profile, record: dict[str, Any]) -> None:
    """Take the consent a record carries, per purpose (lower-cased), from Segment's
    ``context.consent.categoryPreferences`` (``{"Advertising": false}``); apply it before anything else of the record."""
    context = record.get("context")
    consent = context.get("consent") if context else None
    preferences = consent.get("categoryPreferences") if consent else None
    if isinstance(preferences, dict):
        for purpose, granted in preferences.items():
            if isinstance(granted, bool):
                profile.consent[str(purpose).lower()] = granted


def trim_history(profile: Profile, now: int, policy: HistoryPolicy) -> None:
    """Drop history older than the policy's horizon before ``now`` and beyond its size cap; forget old message ids."""
    cutoff = now - policy.horizon_ms
    history = profile.history
    start = bisect.bisect_left(history, cutoff, key=_TS)
    start = max(start, len(history) - policy.max_events)
    if start > 0:
        del history[:start]
    seen = profile.seen
    oldest = now - policy.dedup_ms
    if len(seen) > policy.max_events or (seen and min(seen.values()) <= oldest):
        kept = sorted(((ts, mid) for mid, ts in seen.items() if ts > oldest), reverse=True)[: policy.max_events]
        if len(kept) != len(seen):
            profile.seen = {mid: ts for ts, mid in kept}


_TS = attrgetter("ts")


#: The property values history keeps (and ``None``).
_SCALARS = (str, int, float, bool)


def clear(profile: Profile) -> None:
    """Erase ``profile`` in place: every trait, count, history, score, alias and membership gone.

    It keeps only what exactly-once needs: the applied offsets, the change ``seq`` (so
    change ids stay unique) and the partition. Exit the memberships before calling this.
    """
    tombstone = Profile(profile.customer_id, seq=profile.seq, applied=profile.applied, partition=profile.partition)
    vars(profile).update(vars(tombstone))


def forget(profile: Profile, at: int, suppress: bool) -> None:
    """Turn ``profile`` into a tombstone (see :func:`clear`); with ``suppress``, later events for the id are dropped."""
    clear(profile)
    profile.forgotten, profile.suppressed = at, suppress
