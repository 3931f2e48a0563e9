"""The worker's processing step on real Redis and the real broker, driven directly (no faust).

A hand-written evaluator stands in for the rule set so these tests pin down the
processor's own promises: redelivery applies once, timers fire with no event,
decided changes survive a failed publication with the same id and seq.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from stream.config import Settings
from stream.envelope import pack
from stream.kafka import AsyncProducer, KafkaUnavailable
from stream.output.changes import Change
from stream.state import keys
from stream.state.profile import HistoryPolicy, Profile
from stream.state.store import ProfileStore, split_stored, stored
from stream.worker.processor import Message, Processor, Rejected, parse
from tests.e2e.conftest import make_settings
from tests.e2e.harness import TopicReader

WINDOW = 3_000


@dataclass(frozen=True)
class Verdict:
    holds: bool
    reason: str
    deadline: int | None


class TwoViewsIn3s:
    """'hot': 2+ 'View' events in the last 3 s (window edge: ts + 3000 is out)."""

    version = "two-views"

    def evaluate(self, profile: Profile, now: int, only: frozenset[str] | None = None) -> dict[str, Verdict]:
        inside = [e.ts for e in profile.history if e.name == "View" and now - WINDOW < e.ts <= now]
        holds = len(inside) >= 2
        deadline = inside[-2] + WINDOW if holds else None
        return {"hot": Verdict(holds, f"views in 3s = {len(inside)}", deadline)}

    def affected(self, record: dict[str, Any]) -> frozenset[str] | None:
        return None  # every record may change 'hot'

    def group(self, customer_id: str, segment: str) -> str | None:
        return None

    def apply_points(self, profile: Profile, record: dict[str, Any], ts: int) -> None:
        """No declared scores."""

    def points_at(self, profile: Profile, now: int) -> dict[str, float]:
        return {}

    def merge_points(self, profile: Profile, points: dict[str, list[float]]) -> None:
        """No declared scores."""


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class FlakyProducer:
    """The real producer, failing the next N sends as an unreachable broker would."""

    def __init__(self, real: AsyncProducer, failures: int) -> None:
        self.real, self.failures = real, failures

    async def send_many(self, records: Any) -> None:
        await self.queue([(topic, -1, key, value) for topic, key, value in records])

    def queue(self, records: Any) -> asyncio.Future[None]:
        if self.failures:
            self.failures -= 1
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(KafkaUnavailable("broker unreachable (simulated)"))
            return failed
        return self.real.queue(records)


def view(offset: int, ts: int, partition: int = 1, customer: str = "c1") -> Message:
    record = {"type": "track", "event": "View", "userId": customer, "ts": ts, "messageId": f"m{offset}"}
    return Message(partition, offset, customer.encode(), orjson.dumps(record))


def processor(settings: Settings, clock: Clock, producer: Any = None) -> Processor:
    store = ProfileStore(aioredis.Redis.from_url(settings.redis_url), settings.namespace)
    return Processor(
        settings, TwoViewsIn3s(), HistoryPolicy(horizon_ms=WINDOW), store, producer or AsyncProducer(settings), "epoch1", clock
    )


def test_redelivered_batch_is_applied_once_and_timer_exits_without_event(base_settings: Settings) -> None:
    settings = make_settings(base_settings)
    clock = Clock(1_000_000)

    async def scenario() -> Profile:
        p = processor(settings, clock)
        batch = [view(0, 999_000), view(1, 999_500)]
        await p.handle_batch(batch)
        await p.handle_batch(batch)  # redelivery after a rebalance: same offsets
        assert await p.fire_timers([1]) == 0  # deadline 1_002_000 not reached
        clock.now = 1_002_000
        assert await p.fire_timers([1]) == 1
        return (await p.store.load(["c1"]))["c1"].profile

    profile = asyncio.run(scenario())
    assert profile.counts == {"View": 2}
    assert profile.memberships == {} and profile.seq == 2 and profile.deadline is None
    reader = TopicReader(settings, settings.changes_topic)
    records = reader.wait_for(lambda r: len(r) >= 2, 20, "two changes")
    assert [(r["change"], r["seq"], r["at"]) for r in records] == [
        ("entered", 1, "1970-01-01T00:16:40.000Z"),
        ("exited", 2, "1970-01-01T00:16:42.000Z"),
    ]
    assert records[1]["reason"] == "views in 3s = 1"
    reader.close()


def test_change_decided_during_a_kafka_outage_is_published_later_with_same_id(base_settings: Settings) -> None:
    settings = make_settings(base_settings)
    clock = Clock(2_000_000)

    async def scenario() -> None:
        real = AsyncProducer(settings)
        p = processor(settings, clock, FlakyProducer(real, failures=1))
        await p.handle_batch([view(0, 1_999_000), view(1, 1_999_100)])
        assert await p.recover([1], min_age_ms=5_000) == 0  # too young: its own publisher may still be at it
        clock.now += 5_000
        assert await p.recover([1], min_age_ms=5_000) == 1
        assert await p.recover([1], min_age_ms=5_000) == 0  # confirmed: not again
        real.close()

    asyncio.run(scenario())
    reader = TopicReader(settings, settings.changes_topic)
    records = reader.wait_for(lambda r: len(r) >= 1, 20, "the recovered change")
    reader.poll(1.0)
    assert [(r["change"], r["seq"]) for r in reader.records] == [("entered", 1)]
    reader.close()


def test_a_republished_old_change_does_not_undo_a_newer_one_in_the_member_set(base_settings: Settings) -> None:
    """A change left in the outbox (Kafka down) is republished after a newer one was applied:
    the member set follows the profile, not the old change."""
    settings = make_settings(base_settings)
    clock = Clock(3_000_000)

    async def scenario() -> tuple[Profile, list[bytes]]:
        real = AsyncProducer(settings)
        p = processor(settings, clock, FlakyProducer(real, failures=1))
        await p.handle_batch([view(0, 2_999_000), view(1, 2_999_100)])  # entered (seq 1): not published
        clock.now = 3_002_000
        assert await p.fire_timers([1]) == 1  # exited (seq 2): published and applied
        clock.now += 5_000
        assert await p.recover([1], min_age_ms=5_000) == 1  # entered (seq 1) again, late
        members = await p.store.redis.zrange(keys.segment(settings.namespace, "hot"), 0, -1)
        profile = (await p.store.load(["c1"]))["c1"].profile
        real.close()
        return profile, members

    profile, members = asyncio.run(scenario())
    assert profile.memberships == {} and members == []
    reader = TopicReader(settings, settings.changes_topic)
    reader.wait_for(lambda r: len(r) >= 2, 20, "both changes")
    assert sorted((r["seq"], r["change"]) for r in reader.records) == [(1, "entered"), (2, "exited")]
    reader.close()


def test_parse_rejects_with_reasons() -> None:
    def reason(value: bytes | None, key: bytes | None = b"k") -> str:
        try:
            parse(Message(0, 0, key, value))
        except Rejected as exc:
            return exc.reason
        return "accepted"

    assert reason(None) == "empty_value"
    assert reason(b"{nope") == "invalid_json"
    assert reason(b"[1]") == "not_an_object"
    assert reason(b'{"type": "purchase"}') == "unknown_type"
    assert reason(b'{"type": "track", "ts": 1}') == "missing_field"
    assert reason(b'{"type": "track", "event": "E"}') == "bad_timestamp"
    assert reason(b'{"type": "track", "event": "E", "ts": 1}', key=None) == "missing_customer_id"
    assert reason(b'{"type": "track", "event": "E", "ts": 1, "userId": "u"}', key=None) == "accepted"
    assert reason(b'{"type": "identify", "timestamp": "2026-01-01T00:00:00Z"}') == "accepted"


def test_event_later_than_the_allowed_lateness_is_dead_lettered(base_settings: Settings) -> None:
    settings = make_settings(base_settings, allowed_lateness_s=60)
    clock = Clock(10_000_000)

    async def scenario() -> Profile:
        p = processor(settings, clock)
        await p.handle_batch([view(0, 10_000_000 - 60_001), view(1, 10_000_000 - 60_000)])
        return (await p.store.load(["c1"]))["c1"].profile

    profile = asyncio.run(scenario())
    assert profile.counts == {"View": 1}  # the one exactly at the limit still counts
    reader = TopicReader(settings, settings.dead_letter_topic)
    [dead] = reader.wait_for(lambda r: len(r) >= 1, 20, "the late event's dead letter")
    assert (dead["reason"], dead["offset"]) == ("too_late", 0)
    assert "SEGSTREAM_ALLOWED_LATENESS" in dead["error"]
    reader.close()


def envelope(offset: int, entries: list[tuple[str, dict[str, Any]]], partition: int = 1) -> Message:
    """An events-topic record carrying several customers' events (as the collector writes them)."""
    return Message(partition, offset, None, pack([(cid.encode(), orjson.dumps(record)) for cid, record in entries]))


def test_envelope_is_applied_once_per_customer_and_a_bad_entry_is_dead_lettered_alone(base_settings: Settings) -> None:
    settings = make_settings(base_settings)
    clock = Clock(3_000_000)

    def v(customer: str, ts: int, mid: str) -> tuple[str, dict[str, Any]]:
        return customer, {"type": "track", "event": "View", "userId": customer, "ts": ts, "messageId": mid}

    first = envelope(0, [v("a", 2_999_000, "a1"), v("b", 2_999_000, "b1"), v("a", 2_999_100, "a2"), ("b", {"type": "purchase"})])
    second = envelope(1, [v("b", 2_999_200, "b2")])

    async def scenario() -> dict[str, Profile]:
        p = processor(settings, clock)
        assert await p.handle_batch([first]) == [4]
        await p.handle_batch([first, second])  # redelivered with the next record
        await p.handle_batch([second, second])  # twice in one batch
        return {cid: loaded.profile for cid, loaded in (await p.store.load(["a", "b"])).items()}

    profiles = asyncio.run(scenario())
    assert profiles["a"].counts == {"View": 2} and profiles["a"].memberships.keys() == {"hot"}
    assert profiles["b"].counts == {"View": 2} and profiles["b"].memberships.keys() == {"hot"}
    assert profiles["a"].applied == {"epoch1:1": 0} and profiles["b"].applied == {"epoch1:1": 1}
    reader = TopicReader(settings, settings.dead_letter_topic)
    # A rejected entry leaves no mark: its redelivery is dead-lettered again, at the same (offset, index).
    dead = reader.wait_for(lambda r: len(r) >= 2, 20, "the bad entry's dead letters")
    assert {(d["reason"], d["offset"], d["index"], d["key"]) for d in dead} == {("unknown_type", 0, 3, "b")}
    assert orjson.loads(dead[0]["value"]) == {"type": "purchase"}
    reader.close()


def test_background_confirmations_apply_in_the_order_changes_were_decided(base_settings: Settings) -> None:
    settings = make_settings(base_settings)

    async def scenario() -> tuple[list[list[int]], list[bytes]]:
        p = processor(settings, Clock(5_000))
        confirm, confirmed = p.store.confirm_published, []

        async def first_one_slow(entries: Any, partitions: Any, memberships: Any = None) -> None:
            if not confirmed:
                await asyncio.sleep(0.3)  # the first confirmation is slow: the second must wait for it
            confirmed.append([e.seq for e in entries])
            await confirm(entries, partitions, memberships)

        p.store.confirm_published = first_one_slow  # type: ignore[method-assign]
        entered, exited = Change("c1", "hot", "entered", 1_000, 1, "in"), Change("c1", "hot", "exited", 2_000, 2, "out")
        p._publish_later([(entered, entered.to_bytes())], {"c1": 1})
        p._publish_later([(exited, exited.to_bytes())], {"c1": 1})
        await p.published()
        members = await p.store.redis.zrange(keys.segment(settings.namespace, "hot"), 0, -1)
        return confirmed, members

    confirmed, members = asyncio.run(scenario())
    assert confirmed == [[1], [2]] and members == []
    reader = TopicReader(settings, settings.changes_topic)
    records = reader.wait_for(lambda r: len(r) >= 2, 20, "both changes")
    assert [r["seq"] for r in records] == [1, 2]
    reader.close()


def test_overlapped_slices_carry_profiles_and_redo_a_customer_another_writer_changed(base_settings: Settings) -> None:
    """Slices of 2 events: each slice's commit goes to Redis behind the next slice's load, and the
    next slice steps the same customer from the profile just decided. When another writer moves
    the version before that commit lands, the commit is refused and the customer is redone from
    Redis with the events of both slices: the other writer's state is kept, each change published once."""
    settings = make_settings(base_settings, batch_max=2)
    clock = Clock(2_000_000)
    views = [view(i, 1_999_000 + i * 100) for i in range(6)]

    async def scenario() -> tuple[Profile, int, list[bytes]]:
        p = processor(settings, clock)
        real, calls = p.store.load_ahead, []

        async def other_writer_before_second(customer_ids: Any, staged: Any) -> Any:
            calls.append(list(customer_ids))
            if len(calls) == 2:  # slice 1's commit is about to be sent: another writer gets in first
                await p.store.redis.set(keys.profile(settings.namespace, "c1"), stored(1, Profile("c1", traits={"plan": "pro"})))
            return await real(customer_ids, staged)

        p.store.load_ahead = other_writer_before_second  # type: ignore[method-assign]
        await p.handle_batch(views)
        raw = await p.store.redis.get(keys.profile(settings.namespace, "c1"))
        stats = await p.store.redis.hgetall(keys.stats(settings.namespace))
        # slice 2 continues from slice 1's profile; slice 3 loads the redo's, committed apart
        assert calls == [["c1"], [], ["c1"]]
        return (await p.store.load(["c1"]))["c1"].profile, split_stored(raw)[0], stats[b"events"]

    profile, version, events = asyncio.run(scenario())
    assert profile.traits == {"plan": "pro"}, "the other writer's state was overwritten"
    assert profile.counts == {"View": 6} and profile.applied == {"epoch1:1": 5} and events == b"6"
    assert version == 3  # the other writer's 1, the redo of slices 1-2, slice 3
    reader = TopicReader(settings, settings.changes_topic)
    records = reader.wait_for(lambda r: len(r) >= 1, 20, "the change")
    assert [(r["change"], r["seq"]) for r in records] == [("entered", 1)]
    reader.close()
