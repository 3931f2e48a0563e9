"""Identity resolution, pure: anonymous -> identified merges driven through the replay (both hops)."""

from __future__ import annotations

from pathlib import Path

from stream.replay import replay
from stream.rules import load_rules
from stream.state.identity import combine, forwarded, identifier, linked_ids, merge_in_record
from stream.state.profile import Event, Profile, iso

T = 1_800_000_000_000
RULES = """
scores:
  - {name: interest, points: [{event: Product Viewed}]}
segments:
  - {name: viewers, condition: {event: Product Viewed, within: 7d, count: {gte: 3}}}
  - {name: buyers, condition: {event: Order Completed, within: 7d}}
"""


def event(kind: str, at: int, **fields: object) -> dict:
    return {"type": kind, "timestamp": iso(at), **fields}


def test_anonymous_history_merges_into_the_identified_profile(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    rules = load_rules(tmp_path)
    history = [
        event("identify", T, userId="u1", traits={"plan": "free", "city": "Oslo"}),
        event("track", T + 1, userId="u1", event="Order Completed", properties={"revenue": 20}),
        event("identify", T + 5, anonymousId="a1", traits={"plan": "pro"}),  # newer: wins after the merge
        *[event("track", T + 10 + i, anonymousId="a1", event="Product Viewed") for i in range(3)],
        event("identify", T + 100, userId="u1", anonymousId="a1", traits={"email": "u1@x.io"}),
        event("track", T + 200, anonymousId="a1", event="Product Viewed", messageId="late-view"),
        event("track", T + 201, anonymousId="a1", event="Product Viewed", messageId="late-view"),  # a retry
    ]
    result = replay(history, rules, rules.policy(100))
    u1, a1 = result.profiles["u1"], result.profiles["a1"]
    assert a1.merged_into == "u1" and (a1.traits, a1.history, a1.memberships) == ({}, [], {})
    assert u1.counts == {"Order Completed": 1, "Product Viewed": 4}
    assert u1.traits == {"plan": "pro", "city": "Oslo", "email": "u1@x.io"}
    assert u1.aliases == ["a1", "email:u1@x.io"] and u1.revenue == 20
    assert [e.name for e in u1.history] == ["Order Completed", *["Product Viewed"] * 4]
    assert u1.points["interest"][0] == 4  # declared scores add up (no decay)
    moves = [(c.customer_id, c.segment, c.change) for c in result.changes]
    assert moves == [("u1", "buyers", "entered"), ("a1", "viewers", "entered"), ("a1", "viewers", "exited"), ("u1", "viewers", "entered")]
    exit_reason = next(c.reason for c in result.changes if c.change == "exited")
    assert exit_reason == "merged into customer u1"


def test_links_and_records() -> None:
    survivor = Profile("u1", aliases=["old"])
    assert linked_ids(survivor, {"type": "identify", "userId": "u1", "anonymousId": "a1"}) == ["a1"]
    assert linked_ids(survivor, {"type": "identify", "userId": "u1", "anonymousId": "old"}) == []  # linked already
    assert linked_ids(survivor, {"type": "identify", "anonymousId": "a1"}) == []  # nobody identified
    assert linked_ids(survivor, {"type": "alias", "userId": "u1", "previousId": "p9"}) == ["p9"]
    record = {"type": "track", "anonymousId": "a1", "event": "X"}
    assert forwarded(record, "u1")["userId"] == "u1" and forwarded(record, "u1")["messageId"] == forwarded(record, "u1")["messageId"]


def test_combine_precedence_per_trait_newest_wins() -> None:
    survivor = Profile("u1", traits={"plan": "free", "tier": "gold"}, trait_times={"plan": 10, "tier": 50}, last_seen=60, first_seen=5)
    other = Profile("a1", traits={"plan": "pro", "tier": "silver"}, trait_times={"plan": 20, "tier": 30}, last_seen=40, first_seen=1)
    other.history = [Event(1, "page")]
    combine(survivor, "a1", merge_in_record(other, "u1", 70)["state"])
    assert survivor.traits == {"plan": "pro", "tier": "gold"}
    assert (survivor.first_seen, survivor.last_seen, survivor.aliases) == (1, 60, ["a1"])


def test_the_same_email_merges_two_known_customers_into_the_first_claimant(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    rules = load_rules(tmp_path)
    history = [
        event("identify", T, userId="crm-1", traits={"email": " Ann@Example.COM "}),
        event("track", T + 1, userId="crm-1", event="Order Completed"),
        event("identify", T + 10, userId="web-9", traits={"email": "ann@example.com", "plan": "pro"}),
        *[event("track", T + 20 + i, userId="web-9", event="Product Viewed") for i in range(3)],
        event("identify", T + 30, userId="other", traits={"email": "bob@example.com"}),
    ]
    result = replay(history, rules, rules.policy(100))
    ann = result.profiles["crm-1"]
    assert result.profiles["web-9"].merged_into == "crm-1" and result.profiles["email:ann@example.com"].merged_into == "crm-1"
    assert ann.counts == {"Order Completed": 1, "Product Viewed": 3} and ann.traits["plan"] == "pro"
    assert sorted(ann.memberships) == ["buyers", "viewers"] and result.profiles["other"].merged_into is None


def test_identifiers_are_normalized() -> None:
    assert identifier("email", "  Ann@Example.COM ") == "email:ann@example.com"
    assert identifier("email", "not an email") is None
    assert identifier("phone", "+47 (22) 33-44-55") == "phone:+4722334455"
    assert identifier("phone", "0047 22 33 44 55") == "phone:+4722334455"
    assert identifier("phone", "22 33 44 55") is None  # no country code: not E.164, never matched
    assert identifier("phone", 4722334455) is None


def test_forgetting_a_survivor_forgets_every_id_merged_into_it(tmp_path: Path) -> None:
    from stream.output.deletions import forget_request

    (tmp_path / "r.yaml").write_text(RULES)
    rules = load_rules(tmp_path)
    history = [
        event("track", T, anonymousId="a1", event="Product Viewed"),
        event("identify", T + 10, userId="u1", anonymousId="a1", traits={"email": "u1@x.io"}),
        {**forget_request("u1", T + 100, suppress=True)},
    ]
    result = replay(history, rules, rules.policy(100))
    for cid in ("u1", "a1", "email:u1@x.io"):
        profile = result.profiles[cid]
        assert (profile.forgotten, profile.suppressed, profile.merged_into, profile.aliases) == (T + 100, True, None, []), cid
