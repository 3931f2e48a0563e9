"""Identity resolution on a running engine: an anonymous visitor identified on another partition.

The anonymous id and the user id are chosen on different partitions, so the merge crosses
workers' ownership through the events topic. Real Tansu broker and real redis-server.
"""

from __future__ import annotations

from pathlib import Path

from stream.client import Client
from stream.config import Settings
from stream.worker.backfill import partition_of
from tests.e2e.engine import Engine, settings_with_rules
from tests.e2e.harness import TopicReader, produce, track, wait_until

RULES = """
segments:
  - {name: viewers, condition: {event: Product Viewed, within: 1d, count: {gte: 3}}}
  - {name: buyers, condition: {event: Order Completed, within: 1d}}
"""


def anonymous(anon: str, name: str, **fields: object) -> dict:
    record = track(anon, name, **fields)
    del record["userId"]
    return {**record, "anonymousId": anon}


def test_anonymous_to_identified_merge_across_partitions(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES)
    user = "user-7"
    anon = next(f"anon-{i}" for i in range(100) if partition_of(f"anon-{i}", settings.partitions) != partition_of(user, settings.partitions))
    eng = Engine(settings).start("worker", "api")
    try:
        produce(settings, settings.events_topic, [(anon.encode(), anonymous(anon, "Product Viewed")) for _ in range(3)])
        produce(settings, settings.events_topic, [(user.encode(), track(user, "Order Completed", properties={"revenue": 30}))])
        changes = TopicReader(settings, settings.changes_topic)
        changes.wait_for(lambda r: {(x["customer_id"], x["segment"]) for x in r} == {(anon, "viewers"), (user, "buyers")}, 30, "both entered")

        identify = {"type": "identify", "userId": user, "anonymousId": anon, "traits": {"email": "u7@x.io"}, "timestamp": track(user, "x")["timestamp"]}
        produce(settings, settings.events_topic, [(user.encode(), identify)])
        records = changes.wait_for(
            lambda r: (anon, "viewers", "exited") in {(x["customer_id"], x["segment"], x["change"]) for x in r}
            and (user, "viewers", "entered") in {(x["customer_id"], x["segment"], x["change"]) for x in r},
            30,
            f"the merge's changes; worker: {eng.worker_log()}",
        )
        exited = next(x for x in records if x["change"] == "exited")
        assert exited["reason"] == f"merged into customer {user}"

        api = Client(eng.api_url)
        merged = api.customer(anon)  # a lookup by the merged-away id finds the survivor
        assert merged["customer_id"] == user and merged["aliases"] == [anon, "email:u7@x.io"]
        assert merged["event_counts"] == {"Order Completed": 1, "Product Viewed": 3}
        assert merged["traits"] == {"email": "u7@x.io"} and sorted(merged["segments"]) == ["buyers", "viewers"]
        assert [s["segment"] for s in api.customer_segments(anon)] == ["buyers", "viewers"]
        assert sorted(api.members("viewers")) == [user]

        # A later anonymous event (and its retry) is forwarded to the survivor and counted once.
        late = anonymous(anon, "Product Viewed", messageId="late-1")
        produce(settings, settings.events_topic, [(anon.encode(), late), (anon.encode(), late)])
        wait_until(lambda: api.customer(user)["event_counts"].get("Product Viewed") == 4, 30, "the forwarded event")
        wait_until(lambda: eng.stat("duplicates") >= 1, 30, "the retry dropped")
        # No change lost or duplicated: each (customer, seq) once, one record per id.
        final = changes.poll(1.0)
        assert len({x["id"] for x in final}) == len({(x["customer_id"], x["seq"]) for x in final})
        assert sorted((x["customer_id"], x["segment"], x["change"]) for x in {x["id"]: x for x in final}.values()) == sorted(
            [(anon, "viewers", "entered"), (anon, "viewers", "exited"), (user, "buyers", "entered"), (user, "viewers", "entered")]
        )
        changes.close()
    finally:
        eng.stop()


def test_the_same_email_merges_two_customers_on_different_partitions(base_settings: Settings, tmp_path: Path) -> None:
    settings = settings_with_rules(base_settings, tmp_path / "rules", RULES)
    first = "crm-1"
    second = next(f"web-{i}" for i in range(100) if partition_of(f"web-{i}", settings.partitions) != partition_of(first, settings.partitions))
    eng = Engine(settings).start("worker", "api")
    try:
        identify = lambda cid, email: {**track(cid, "x"), "type": "identify", "traits": {"email": email}}  # noqa: E731
        produce(settings, settings.events_topic, [(first.encode(), identify(first, "Ann@Example.com")), (first.encode(), track(first, "Order Completed"))])
        api = Client(eng.api_url)
        wait_until(lambda: [s["segment"] for s in api.customer_segments(first)] == ["buyers"], 30, "the first customer")
        produce(
            settings,
            settings.events_topic,
            [(second.encode(), identify(second, " ann@example.com ")), *[(second.encode(), track(second, "Product Viewed")) for _ in range(3)]],
        )
        wait_until(lambda: api.customer(second)["customer_id"] == first, 30, f"the match; worker: {eng.worker_log()}")
        # The redirect exists once hop 2 ran; the survivor has the data once hop 3 (merge_in) ran too.
        expected = {"Order Completed": 1, "Product Viewed": 3}
        wait_until(lambda: api.customer(first)["event_counts"] == expected, 30, "the merged data at the survivor")
        merged = api.customer(first)
        assert second in merged["aliases"] and "email:ann@example.com" in merged["aliases"]
        wait_until(lambda: sorted(api.members("viewers")) == [first], 30, "viewers moved to the survivor")
    finally:
        eng.stop()
