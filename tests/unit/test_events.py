"""Segment event validation and normalisation into events-topic records (pure, no services)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.ingest.events import (
    BATCH,
    MAX_EVENT_BYTES,
    MESSAGE_ID_PREFIX,
    EventError,
    Outcome,
    corrected_time,
    normalise,
)
from stream.state.profile import iso, parse_time

NOW = parse_time("2024-05-01T12:00:10.000Z")


def one(event: dict[str, Any], kind: str, received_at: int = NOW) -> tuple[bytes, dict[str, Any]]:
    """The key and decoded value of the single record a valid single call becomes."""
    outcome = normalise(event, kind, received_at, len(orjson.dumps(event)))
    assert outcome.errors == []
    (record,) = outcome.records
    assert record.type == kind
    return record.key, orjson.loads(record.value)


def errors(body: dict[str, Any], kind: str) -> list[EventError]:
    outcome = normalise(body, kind, NOW, len(orjson.dumps(body)))
    assert outcome.errors, "expected errors"
    return outcome.errors


def batch(events: list[Any], **envelope: Any) -> Outcome:
    body = {"batch": events, **envelope}
    return normalise(body, BATCH, NOW, len(orjson.dumps(body)))


def test_track_record_has_the_contract_shape() -> None:
    key, value = one(
        {
            "userId": "alice",
            "anonymousId": "anon-1",
            "event": "Order Completed",
            "properties": {"revenue": 42},
            "messageId": "m-1",
            "timestamp": "2024-05-01T12:00:00.000Z",
            "context": {"ip": "1.2.3.4"},
            "integrations": {"All": True},
            "writeKey": "secret",
            "_metadata": {"bundled": []},
        },
        "track",
    )
    assert key == b"alice"
    assert value == {
        "type": "track",
        "messageId": "m-1",
        "userId": "alice",
        "anonymousId": "anon-1",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "ts": parse_time("2024-05-01T12:00:00Z"),
        "receivedAt": "2024-05-01T12:00:10.000Z",
        "originalTimestamp": "2024-05-01T12:00:00.000Z",
        "context": {"ip": "1.2.3.4"},
        "integrations": {"All": True},
        "event": "Order Completed",
        "properties": {"revenue": 42},
        "_metadata": {"bundled": []},
    }


def test_identify_keeps_traits_and_keys_by_anonymous_id_without_user_id() -> None:
    key, value = one({"anonymousId": "anon-1", "traits": {"plan": "pro"}}, "identify")
    assert key == b"anon-1"
    assert value["traits"] == {"plan": "pro"}
    assert "userId" not in value and "properties" not in value


def test_page_and_screen_keep_name_and_category() -> None:
    for kind in ("page", "screen"):
        _, value = one({"userId": "u", "name": "Pricing", "category": "Docs", "properties": {"path": "/p"}}, kind)
        assert (value["type"], value["name"], value["category"], value["properties"]) == (kind, "Pricing", "Docs", {"path": "/p"})
    _, bare = one({"userId": "u"}, "page")
    assert "name" not in bare and "category" not in bare and bare["properties"] == {}


def test_group_and_alias() -> None:
    _, group = one({"userId": "u", "groupId": 42, "traits": {"name": "Acme"}}, "group")
    assert (group["groupId"], group["traits"]) == ("42", {"name": "Acme"})
    key, alias = one({"previousId": "anon-1", "userId": "u"}, "alias")
    assert (key, alias["previousId"], alias["userId"]) == (b"u", "anon-1", "u")


def test_numeric_ids_become_strings() -> None:
    key, value = one({"userId": 7, "anonymousId": 1.5, "event": "E"}, "track")
    assert key == b"7"
    assert (value["userId"], value["anonymousId"]) == ("7", "1.5")


def test_message_id_assigned_when_missing() -> None:
    _, first = one({"userId": "u", "event": "E"}, "track")
    _, second = one({"userId": "u", "event": "E"}, "track")
    assert first["messageId"].startswith(MESSAGE_ID_PREFIX)
    assert first["messageId"] != second["messageId"]


def test_clock_skew_corrected_with_sent_at() -> None:
    # The client's clock is 1 h fast: it says it sent the event at 13:00:05, 5 s after it happened.
    _, value = one(
        {"userId": "u", "event": "E", "timestamp": "2024-05-01T13:00:00.000Z", "sentAt": "2024-05-01T13:00:05.000Z"},
        "track",
    )
    assert value["ts"] == NOW - 5000
    assert value["timestamp"] == "2024-05-01T12:00:05.000Z"
    assert value["originalTimestamp"] == "2024-05-01T13:00:00.000Z"
    assert value["sentAt"] == "2024-05-01T13:00:05.000Z"


def test_original_timestamp_preferred_and_batch_sent_at_used() -> None:
    outcome = batch(
        [{"type": "track", "userId": "u", "event": "E", "originalTimestamp": "2024-05-01T11:59:00.250+01:00"}],
        sentAt="2024-05-01T12:00:00.250+01:00",
    )
    value = orjson.loads(outcome.records[0].value)
    assert value["ts"] == NOW - 60_000
    assert value["originalTimestamp"] == "2024-05-01T10:59:00.250Z"
    assert value["sentAt"] == "2024-05-01T11:00:00.250Z"


def test_timestamp_kept_without_sent_at_and_received_at_without_timestamp() -> None:
    _, kept = one({"userId": "u", "event": "E", "timestamp": "2020-01-01T00:00:00Z"}, "track")
    assert kept["ts"] == parse_time("2020-01-01T00:00:00Z")
    _, now = one({"userId": "u", "event": "E"}, "track")
    assert (now["ts"], now["timestamp"], now["receivedAt"]) == (NOW, iso(NOW), iso(NOW))
    assert "originalTimestamp" not in now and "sentAt" not in now


def test_corrected_time() -> None:
    assert corrected_time(10_000, 9_000, 8_500) == 9_500
    assert corrected_time(10_000, None, 8_500) == 8_500
    assert corrected_time(10_000, 9_000, None) == 10_000


@pytest.mark.parametrize(
    ("body", "kind", "field", "says"),
    [
        ({"event": "E"}, "track", "userId", "anonymousId"),
        ({"userId": "", "event": "E"}, "track", "userId", "empty"),
        ({"userId": True, "event": "E"}, "track", "userId", "boolean"),
        ({"userId": "u"}, "track", "event", "required"),
        ({"userId": "u", "event": ""}, "track", "event", "empty"),
        ({"userId": "u", "event": "E", "properties": [1]}, "track", "properties", "JSON object"),
        ({"userId": "u", "event": "E", "timestamp": "garbage"}, "track", "timestamp", "ISO 8601"),
        ({"userId": "u", "event": "E", "sentAt": 12}, "track", "sentAt", "ISO 8601"),
        ({"userId": "u", "traits": "x"}, "identify", "traits", "JSON object"),
        ({"userId": "u", "context": []}, "identify", "context", "JSON object"),
        ({"userId": "u", "name": 3}, "page", "name", "string"),
        ({"userId": "u"}, "group", "groupId", "required"),
        ({"userId": "u"}, "alias", "previousId", "required"),
        ({"previousId": "p", "anonymousId": "a"}, "alias", "userId", "required"),
        ({"type": "identify", "userId": "u", "event": "E"}, "track", "type", "'track'"),
    ],
)
def test_invalid_single_event_names_the_field(body: dict[str, Any], kind: str, field: str, says: str) -> None:
    (error,) = errors(body, kind)
    assert (error.index, error.field, error.reason) == (None, field, "invalid_field")
    assert error.message.startswith(field) and says in error.message


def test_batch_accepts_good_events_and_names_bad_ones() -> None:
    outcome = batch(
        [
            {"type": "identify", "userId": "u", "traits": {}},
            {"type": "track", "userId": "u"},
            "nope",
            {"type": "launch", "userId": "u"},
            {"type": "page", "anonymousId": "a", "properties": []},
            {"type": "track", "userId": "u", "event": "E"},
        ]
    )
    assert [r.type for r in outcome.records] == ["identify", "track"]
    assert [(e.index, e.field) for e in outcome.errors] == [
        (1, "batch[1].event"),
        (2, "batch[2]"),
        (3, "batch[3].type"),
        (4, "batch[4].properties"),
    ]


def test_batch_context_and_integrations_fill_in_each_event() -> None:
    outcome = batch(
        [{"type": "track", "userId": "u", "event": "E", "context": {"ip": "event"}, "integrations": {"X": False}}],
        context={"ip": "batch", "library": {"name": "lib"}},
        integrations={"All": True, "X": True},
    )
    value = orjson.loads(outcome.records[0].value)
    assert value["context"] == {"ip": "event", "library": {"name": "lib"}}
    assert value["integrations"] == {"All": True, "X": False}


def test_bad_envelope_names_it() -> None:
    assert [(e.index, e.field) for e in batch({"not": "a list"}).errors] == [(None, "batch")]  # type: ignore[arg-type]
    assert [(e.index, e.field) for e in normalise({}, BATCH, NOW, 2).errors] == [(None, "batch")]
    assert [e.field for e in batch([], sentAt="yesterday").errors] == ["sentAt"]


def test_collector_fields_cannot_be_overridden_by_extras() -> None:
    _, value = one({"userId": "u", "event": "E", "ts": 1, "receivedAt": "1999-01-01T00:00:00Z"}, "track")
    assert (value["ts"], value["receivedAt"]) == (NOW, iso(NOW))


def test_oversized_events_are_refused_naming_them() -> None:
    big = {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * MAX_EVENT_BYTES}}
    outcome = batch([{"type": "track", "userId": "u", "event": "E"}, big])
    assert len(outcome.records) == 1
    assert [(e.index, e.field, e.reason) for e in outcome.errors] == [(1, "batch[1]", "too_large")]
    (error,) = errors(big, "track")
    assert (error.index, error.field, error.reason) == (None, "body", "too_large")
