"""Hostile records on the events topic, as any producer could write them (bypassing the collector).

Every record is either dead-lettered by ``parse`` with a known reason, or goes through
the worker's whole step with the shipped rules (models included) and serialises: it
never fails a batch (which would stall on the partition or be dead-lettered as
``processing_error`` only after the batch was isolated). The dead-letter record itself
always fits Kafka's message limit and keeps the original bytes (or says it truncated them).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.config import Settings
from stream.ingest.events import EARLIEST_EVENT_MS, LATEST_EVENT_MS
from stream.models.lifecycle import Modelling
from stream.rules import load_rules
from stream.state.profile import Profile
from stream.worker.processor import KNOWN_TYPES, Message, Rejected, dead_letter_record, parse
from stream.worker.step import advance
from tests.e2e.harness import ROOT
from tests.unit.test_fuzz_collector import FUZZ, TIMES, encode, hostile_values, nested, weighted

#: Every reason ``parse`` may give (README, "Topics and record shapes").
REASONS = {
    "empty_value",
    "invalid_json",
    "not_an_object",
    "too_deep",
    "unknown_type",
    "missing_field",
    "invalid_field",
    "bad_timestamp",
    "missing_customer_id",
    "bad_key",
}
NOW = 1_800_000_000_000
RULES = load_rules(ROOT / "rules")
POLICY = RULES.policy(1000)
SETTINGS = Settings(namespace="fuzz")
#: Event types a producer outside segstream writes; merge_in/merge_out/claim/forget are the workers' own.
PUBLIC_TYPES = ["track", "identify", "page", "screen", "group", "alias"]

timestamps = weighted(
    (12, st.integers(min_value=NOW - 10**9, max_value=NOW + 10**9)),
    (2, st.integers(min_value=-(2**63), max_value=2**64 - 1)),
    (2, st.sampled_from([0, -1, EARLIEST_EVENT_MS, LATEST_EVENT_MS, LATEST_EVENT_MS + 1, 253_402_300_799_999, 2**63 - 1])),
    (2, st.sampled_from(TIMES)),
    (1, st.floats()),
    (1, hostile_values),
)


@st.composite
def hostile_record(draw: st.DrawFn) -> dict[str, Any]:
    """An events-topic record: mostly plausible, with hostile values in some fields."""
    kind = draw(weighted((8, st.sampled_from(PUBLIC_TYPES)), (1, st.sampled_from(sorted(KNOWN_TYPES))), (1, hostile_values)))
    record: dict[str, Any] = {"type": kind, "userId": "u1", draw(st.sampled_from(["ts", "timestamp", "receivedAt"])): draw(timestamps)}
    record.update({"track": {"event": "Order Completed"}, "group": {"groupId": "g1"}, "alias": {"previousId": "p1"}}.get(kind, {}) if isinstance(kind, str) else {})
    record.update({"merge_in": {"from": "x", "state": {}}, "merge_out": {"into": "x"}, "claim": {"claimant": "x"}}.get(kind, {}) if isinstance(kind, str) else {})
    names = ["userId", "anonymousId", "messageId", "event", "properties", "traits", "context", "groupId", "previousId", "name",
             "category", "ts", "timestamp", "receivedAt", "suppress", "into", "from", "claimant"]
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        if draw(st.integers(0, 3)):
            record[name] = draw(hostile_values)
        else:
            record.pop(name, None)
    for path in draw(st.lists(st.sampled_from(["properties", "traits", "context"]), max_size=2)):
        inner = record.get(path)
        key = draw(st.sampled_from(["revenue", "total", "email", "phone", "consent", "traits", "signed_up_at", "plan", "x"]))
        record[path] = {**(inner if isinstance(inner, dict) else {}), key: draw(hostile_values)}
    return record


@st.composite
def hostile_message(draw: st.DrawFn) -> Message:
    """A raw Kafka message of the events topic: a hostile record, its bytes perhaps mangled, a key perhaps odd."""
    value = encode(draw(hostile_record()))
    value = draw(
        weighted(
            (6, st.just(value)),
            (1, st.binary(max_size=64)),
            (1, st.sampled_from([b"", b"null", b"[]", b'"x"', b"\xff\xfe", b"\x00" * 1000, b"{" * 5000])),
            (1, st.just(value[: len(value) // 2])),
            (1, st.just(value.replace(b'"', b'"\xff', 1))),
        )
    )
    key = draw(weighted((4, st.just(b"u1")), (1, st.none()), (1, st.just(b"")), (1, st.binary(max_size=8)), (1, st.just(b"\xff\xfe"))))
    return Message(draw(st.integers(0, 7)), draw(st.integers(0, 2**40)), key, value)


def step_through(customer: str, record: dict[str, Any], ts: int) -> None:
    """The worker's step with the shipped rules and models: the record, the record again (another messageId), then
    a plain event, the profile stored and loaded between steps as the worker does; everything serialises."""
    models = Modelling(RULES.models) if RULES.models is not None else None
    profile = Profile(customer)
    again = {**record, "messageId": "again"}
    plain = {"type": "track", "event": "Product Viewed", "userId": customer, "messageId": "plain"}
    for records in ([(record, ts)], [(again, ts)], [(plain, ts + 1)]):
        step = advance(profile, records, max(ts, NOW), RULES, POLICY, models)
        profile = Profile.from_bytes(profile.to_bytes())
        for entry in [*step.changes, *step.training, *step.deletions, *step.routed]:
            orjson.loads(entry.to_bytes())
        profile.public(RULES.points_at(profile, NOW))
    for name in RULES.segments:
        orjson.dumps(RULES.explain(profile, NOW, name))


def check_dead_letter(message: Message, error: Rejected) -> None:
    """The dead letter fits Kafka's 1 MB limit with its key and keeps the original value, or says it cut it."""
    raw = dead_letter_record(SETTINGS, message, error)
    assert len(raw) + len(message.key or b"") < 1_000_000
    letter = orjson.loads(raw)
    assert letter["reason"] == error.reason and letter["offset"] == message.offset
    kept = letter["value"].encode() if letter["value"] is not None else base64.b64decode(letter["value_base64"])
    assert kept == (message.value or b"") if not letter["truncated"] else (message.value or b"").startswith(kept)


@FUZZ
@given(message=hostile_message())
def test_hostile_records_are_dead_lettered_with_a_reason_or_processed(message: Message) -> None:
    try:
        customer, item = parse(message)
    except Rejected as exc:
        assert exc.reason in REASONS, exc
        check_dead_letter(message, exc)
        return
    assert EARLIEST_EVENT_MS <= item.ts <= LATEST_EVENT_MS
    step_through(customer, item.record, item.ts)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (json.dumps({"type": "track", "event": "e", "userId": "u", "ts": 1, "properties": {"a": 1}}).replace("1}}", "1e400}}"), "invalid_json"),
        (b'{"type": "track", "event": "e", "userId": "u", "ts": 1, "properties": {"revenue": NaN}}', "invalid_json"),
        (encode({"type": "track", "event": "e", "userId": "u", "ts": NOW, "properties": nested(300)}), "too_deep"),
        (encode({"type": "identify", "userId": "u", "ts": NOW, "traits": nested(40)}), "too_deep"),
        (encode({"type": ["track"], "event": "e", "userId": "u", "ts": NOW}), "unknown_type"),
        (encode({"type": "track", "event": 5, "userId": "u", "ts": NOW}), "invalid_field"),
        (encode({"type": "track", "event": "e", "userId": "u", "ts": NOW, "properties": [1]}), "invalid_field"),
        (encode({"type": "identify", "userId": "u", "ts": NOW, "traits": "x"}), "invalid_field"),
        (encode({"type": "identify", "userId": "u", "ts": NOW, "context": {"traits": [1]}}), "invalid_field"),
        (encode({"type": "track", "event": "e", "userId": "u", "ts": NOW, "context": {"consent": 5}}), "invalid_field"),
        (encode({"type": "group", "groupId": "g", "userId": "u", "ts": NOW, "traits": [1]}), "invalid_field"),
        (encode({"type": "merge_in", "from": "x", "userId": "u", "ts": NOW}), "missing_field"),
        (encode({"type": "merge_in", "from": "x", "userId": "u", "ts": NOW, "state": 5}), "invalid_field"),
        (encode({"type": "track", "event": "e", "userId": "u", "ts": 253_402_300_799_000}), "bad_timestamp"),
        (encode({"type": "track", "event": "e", "userId": "u", "timestamp": "9999-12-31T23:59:59Z"}), "bad_timestamp"),
        (encode({"type": "track", "event": "e", "userId": "u", "ts": 2**63 - 1}), "bad_timestamp"),
        (encode({"type": "track", "event": "e", "userId": "u", "ts": -(2**63)}), "bad_timestamp"),
        (encode({"type": "track", "event": "e", "userId": "u", "timestamp": 1e308}), "bad_timestamp"),
        (b"\x00\xff\xfe raw bytes", "invalid_json"),
    ],
    ids=[
        "1e400", "NaN", "deep-300", "deep-40", "list-type", "int-event", "list-properties", "string-traits", "list-context-traits",
        "int-consent", "list-group-traits", "merge_in-no-state", "merge_in-int-state", "ts-9999", "timestamp-9999", "ts-max", "ts-min",
        "timestamp-1e308", "raw-bytes",
    ],
)
def test_known_poison_records_are_dead_lettered(value: str | bytes, reason: str) -> None:
    """Regressions: each of these passed ``parse`` and then failed the batch (or the API's explain) before."""
    message = Message(0, 1, b"u", value.encode() if isinstance(value, str) else value)
    with pytest.raises(Rejected) as caught:
        parse(message)
    assert caught.value.reason == reason
    check_dead_letter(message, caught.value)


@pytest.mark.parametrize(
    "value",
    [b"\x00" * 700_000, b"\xff" * 800_000, "é".encode() * 450_000, b'{"type": "track", "x": "' + b"\\u0000" * 150_000 + b'"}'],
    ids=["nul-bytes", "not-utf8", "two-byte-utf8", "escaped-nul"],
)
def test_dead_letters_of_big_records_fit_the_message_limit(value: bytes) -> None:
    """A 700 KB record of NUL bytes became a 4 MB dead letter, which Kafka refused: the worker's agent crashed."""
    message = Message(0, 1, b"k" * 100_000, value)
    with pytest.raises(Rejected) as caught:
        parse(message)
    check_dead_letter(message, caught.value)


def test_far_future_trait_dates_explain_without_a_deadline() -> None:
    """A trait date in year 9999 plus a window lies past year 9999: explain said 500 before, now the deadline is null."""
    record = {"type": "identify", "userId": "u", "traits": {"signed_up_at": "9999-12-31T23:59:59Z", "created_at": 1e300}}
    step_through("u", record, NOW)


def test_revenue_summing_past_the_largest_float_does_not_poison_the_profile() -> None:
    """Lifetime revenue summed past 1.8e308 was inf, stored as null: every later event of the customer failed."""
    step_through("u", {"type": "track", "event": "Order Completed", "userId": "u", "properties": {"revenue": 1e308}}, NOW)
