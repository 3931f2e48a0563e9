"""What the browser SDKs send, as captured from them in Chromium (tests/e2e/test_browser_sdk.py), is accepted as is."""

from __future__ import annotations

from tests.unit.test_events import errors, one

#: A RudderStack JS SDK v3 page call of an anonymous visitor (trimmed): ``userId`` is an empty string.
RUDDER_PAGE = {
    "type": "page",
    "name": "Product p1",
    "category": "Shop",
    "properties": {"name": "Product p1", "path": "/demo.html"},
    "channel": "web",
    "context": {"library": {"name": "RudderLabs JavaScript SDK", "version": "3.34.1"}, "sessionId": 1796165734353},
    "originalTimestamp": "2024-05-01T12:00:09.000Z",
    "messageId": "c7afa3fc-1134-46e0-a9d0-b9f4d74d761d",
    "userId": "",
    "anonymousId": "6de3b2b4-07e9-444b-a58c-d986cafb5b8f",
    "integrations": {"All": True},
    "sentAt": "2024-05-01T12:00:09.500Z",
}
#: An analytics-next track call of an anonymous visitor (trimmed): ``userId`` is null, the write key in the body.
SEGMENT_TRACK = {
    "type": "track",
    "event": "Product Viewed",
    "properties": {"product_id": "p1", "price": 19.99},
    "context": {"library": {"name": "analytics.js", "version": "npm:next-1.84.3"}},
    "messageId": "ajs-next-1796165634655-a38420d0",
    "anonymousId": "4110a384-20d0-4a9c-9acf-4199a0489b06",
    "userId": None,
    "writeKey": "wk_browser_e2e",
    "timestamp": "2024-05-01T12:00:09.000Z",
    "sentAt": "2024-05-01T12:00:09.500Z",
    "_metadata": {"bundled": ["Segment.io"]},
}


def test_rudderstacks_empty_user_id_means_an_anonymous_visitor() -> None:
    key, value = one(RUDDER_PAGE, "page")
    assert key == b"6de3b2b4-07e9-444b-a58c-d986cafb5b8f" and "userId" not in value
    assert (value["messageId"], value["context"]["library"]["name"], value["channel"]) == (
        RUDDER_PAGE["messageId"], "RudderLabs JavaScript SDK", "web"
    )


def test_an_empty_user_id_without_an_anonymous_id_is_still_refused() -> None:
    (error,) = errors({**RUDDER_PAGE, "anonymousId": None}, "page")
    assert error.field == "userId" and "empty" in error.message


def test_analytics_next_null_user_id_and_body_write_key() -> None:
    key, value = one(SEGMENT_TRACK, "track")
    assert key == b"4110a384-20d0-4a9c-9acf-4199a0489b06" and "userId" not in value and "writeKey" not in value
    assert value["messageId"] == SEGMENT_TRACK["messageId"] and value["_metadata"] == {"bundled": ["Segment.io"]}
