"""Replay with an event-time clock, checked against a brute-force oracle."""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.replay import read_events, replay
from stream.rules import load_rules
from stream.state.profile import iso, parse_time

ROOT = Path(__file__).resolve().parents[2]


def rules_file(tmp: Path, text: str) -> Path:
    path = tmp / "r.yaml"
    path.write_text(text)
    return path


def track(user: str, event: str, ts: int, **props: object) -> dict:
    return {"type": "track", "userId": user, "event": event, "timestamp": iso(ts), "properties": props}


def timeline(changes: list, customer: str, segment: str) -> list[tuple[int, bool]]:
    return [(c.at, c.change == "entered") for c in changes if c.customer_id == customer and c.segment == segment]


def member_at(tl: list[tuple[int, bool]], t: int) -> bool:
    state = False
    for at, entered in tl:
        if at <= t:
            state = entered
    return state


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 60_000), min_size=0, max_size=25),
    window=st.integers(1, 20_000),
    n=st.integers(1, 5),
)
def test_count_window_membership_is_exact_at_every_critical_instant(times: list[int], window: int, n: int, tmp_path_factory) -> None:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("r")
    rules = load_rules(
        rules_file(tmp, f"segments:\n  - name: s\n    condition: {{event: V, within: {window}ms, count: {{gte: {n}}}}}\n")
    )
    base = 1_700_000_000_000
    result = replay([track("u", "V", base + t) for t in times], rules, rules.policy(1000), until=base + 200_000)
    tl = timeline(result.changes, "u", "s")
    # Alternating entered/exited, starting with entered.
    assert [e for _, e in tl] == [i % 2 == 0 for i in range(len(tl))]
    critical = {t for x in times for t in (x, x + window)}
    for c in sorted(critical):
        for t in (c - 1, c, c + 1):
            # Brute force: events with ts in (t - window, t].
            inside = sum(1 for x in times if t - window < x <= t)
            assert member_at(tl, base + t) == (inside >= n), (t, inside)


def test_shipped_rules_enter_and_exit_at_event_time(tmp_path: Path) -> None:
    day = 86_400_000
    t0 = parse_time("2026-01-01T00:00:00Z")
    events = [{"type": "identify", "userId": "a", "traits": {"age": 30, "city": "New York"}, "timestamp": iso(t0)}]
    events += [track("a", "Product Viewed", t0 + i * day) for i in range(3)]
    events += [track("b", "Order Completed", t0 + i * day, revenue=10) for i in range(2)]
    events.append({"type": "track", "event": "no customer", "timestamp": iso(t0)})
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    rules = load_rules(ROOT / "rules")
    result = replay(read_events(path), rules, rules.policy(1000), until=t0 + 90 * day)
    assert timeline(result.changes, "a", "product_browsers") == [(t0 + 2 * day, True), (t0 + 7 * day, False)]
    assert timeline(result.changes, "b", "repeat_buyers") == [(t0 + day, True), (t0 + 30 * day, False)]
    assert timeline(result.changes, "a", "ny_25_34") == [(t0, True)]
    assert result.summary()["ny_25_34"] == {"entered": 1, "exited": 0, "members": 1}
    assert [r.reason for _, r in result.rejected] == ["missing_customer_id"]
    assert [c.seq for c in result.changes if c.customer_id == "b"] == [1, 2, 3, 4, 5], "recent and repeat buyers enter and exit; inactive (no engagement) enters"


def test_csv_columns_nest_into_properties(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("userId,event,timestamp,properties.revenue,properties.sku\nu1,Order Completed,2026-01-01T00:00:00Z,12.5,A1\n")
    [record] = list(read_events(path))
    assert record == {
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "timestamp": "2026-01-01T00:00:00Z",
        "properties": {"revenue": 12.5, "sku": "A1"},
    }
