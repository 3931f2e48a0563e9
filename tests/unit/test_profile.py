"""Profile state transitions: pure, no services."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from stream.state.profile import (
    DEDUP_WINDOW_MS,
    Event,
    HistoryPolicy,
    Profile,
    apply_event,
    event_time,
    first_delivery,
    iso,
    message_key,
    parse_time,
    revenue_of,
    trim_history,
)

POLICY = HistoryPolicy(horizon_ms=10_000, properties=frozenset({"price", "name"}), max_events=5)


def track(event: str, **props: object) -> dict:
    return {"type": "track", "event": event, "properties": props}


def test_identify_merges_traits_and_track_counts() -> None:
    p = Profile("u1")
    apply_event(p, {"type": "identify", "traits": {"age": 30, "city": "NY"}}, 1_000, POLICY)
    apply_event(p, {"type": "identify", "traits": {"city": "New York"}}, 2_000, POLICY)
    apply_event(p, track("Order Completed", revenue=12.5, price=3, color="red"), 3_000, POLICY)
    assert p.traits == {"age": 30, "city": "New York"}
    assert p.counts == {"Order Completed": 1}
    assert p.revenue == 12.5
    assert (p.first_seen, p.last_seen) == (1_000, 3_000)
    # Only the properties the policy keeps are stored in history.
    assert p.history == [Event(3_000, "Order Completed", {"price": 3})]


def test_history_is_sorted_by_event_time_even_when_events_arrive_out_of_order() -> None:
    p = Profile("u1")
    for ts in (5_000, 1_000, 3_000):
        apply_event(p, track("View"), ts, POLICY)
    assert [e.ts for e in p.history] == [1_000, 3_000, 5_000]
    assert (p.first_seen, p.last_seen) == (1_000, 5_000)


def test_page_events_are_named_page_and_keep_their_name() -> None:
    p = Profile("u1")
    apply_event(p, {"type": "page", "name": "Checkout", "properties": {"url": "/x"}}, 1, POLICY)
    assert p.history == [Event(1, "page", {"name": "Checkout"})]


def test_trim_drops_events_beyond_horizon_and_cap() -> None:
    p = Profile("u1")
    for ts in range(0, 20_000, 1_000):
        apply_event(p, track("V"), ts, POLICY)
    trim_history(p, 20_000, POLICY)
    # horizon 10 s keeps ts >= 10_000 (10 events), the cap keeps the newest 5
    assert [e.ts for e in p.history] == [15_000, 16_000, 17_000, 18_000, 19_000]
    trim_history(p, 40_000, POLICY)
    assert p.history == []


def test_round_trip_through_bytes() -> None:
    p = Profile("ü/{x}", traits={"a": [1, 2]}, memberships={"s": 5}, seq=3, applied={"e:1": 7}, deadline=9)
    apply_event(p, track("V", price=1.5), 10, POLICY)
    apply_event(p, {"type": "group", "groupId": "g1", "traits": {"plan": "pro"}}, 11, POLICY)
    apply_event(p, {"type": "alias", "previousId": "anon-1", "userId": "ü/{x}"}, 12, POLICY)
    assert Profile.from_bytes(p.to_bytes()) == p


def test_times() -> None:
    assert parse_time("2026-01-02T03:04:05.678Z") == 1767323045678
    assert parse_time("2026-01-02T03:04:05.678") == 1767323045678
    assert parse_time("2026-01-02T04:04:05.678+01:00") == 1767323045678
    assert parse_time(1767323045.678) == 1767323045678
    assert iso(1767323045678) == "2026-01-02T03:04:05.678Z"
    assert event_time({"ts": 5, "timestamp": "2026-01-01T00:00:00Z"}) == 5
    assert event_time({"timestamp": "2026-01-02T03:04:05.678Z"}) == 1767323045678


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_iso_is_the_datetime_text_of_the_time(ms: int) -> None:
    expected = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso(ms) == expected


def test_revenue_ignores_non_numbers() -> None:
    assert revenue_of({"revenue": "12"}) == 0.0
    assert revenue_of({"revenue": float("nan")}) == 0.0
    assert revenue_of({"total": 4}) == 4.0
    assert revenue_of({"revenue": True}) == 0.0


def test_a_message_id_is_applied_once_within_the_dedup_window() -> None:
    profile = Profile("c")
    record = {"type": "track", "event": "Order Completed", "messageId": "m-1"}
    assert first_delivery(profile, record, 1_000)
    assert not first_delivery(profile, record, 1_000)  # an SDK retry
    assert not first_delivery(profile, record, 5_000)  # even with another time
    assert first_delivery(profile, {"type": "track", "event": "X"}, 1_000)  # no messageId: always new
    policy = HistoryPolicy(horizon_ms=0, max_events=10)
    trim_history(profile, 1_000 + DEDUP_WINDOW_MS - 1, policy)
    assert profile.seen == {message_key("m-1"): 1_000} and len(message_key("m-1")) == 12
    trim_history(profile, 1_000 + DEDUP_WINDOW_MS, policy)  # window over: forgotten
    assert profile.seen == {} and first_delivery(profile, record, 2_000 + DEDUP_WINDOW_MS)


def test_dedup_memory_is_capped_to_the_newest_ids() -> None:
    profile = Profile("c")
    for i in range(20):
        first_delivery(profile, {"messageId": f"m{i}"}, i)
    trim_history(profile, 20, HistoryPolicy(horizon_ms=0, max_events=5))
    assert sorted(profile.seen.values()) == [15, 16, 17, 18, 19]
    assert Profile.from_bytes(profile.to_bytes()).seen == profile.seen


def test_revenue_stays_finite() -> None:
    profile = Profile("c")
    for amount in (1e308, 1e308, float("inf"), 5.0):
        apply_event(profile, {"type": "track", "event": "Order Completed", "properties": {"revenue": amount}}, 1_000, POLICY)
    assert profile.revenue == 1e308 and Profile.from_bytes(profile.to_bytes()).revenue == 1e308
