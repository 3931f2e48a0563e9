"""Privacy in the pure step: forgetting (exits, tombstone, suppression), consent per purpose, PII masking."""

from __future__ import annotations

from pathlib import Path

from stream.output.deletions import Deletion, forget_request
from stream.rules import load_rules
from stream.state.profile import Profile
from stream.worker.step import FORGOTTEN, advance

T = 1_800_000_000_000


def rules(tmp_path: Path):  # noqa: ANN201 - a RuleSet
    (tmp_path / "r.yaml").write_text(
        "segments:\n  - {name: buyers, condition: {event: Order Completed, within: 1d}}\n"
        "  - {name: quiet, condition: {not: {event: $any, within: 1d}}}\n"
    )
    return load_rules(tmp_path)


def order(ts: int) -> tuple[dict, int]:
    return {"type": "track", "event": "Order Completed", "userId": "c", "traits": {"email": "c@x.io"}}, ts


def test_forget_exits_every_segment_and_leaves_a_tombstone_that_is_never_evaluated(tmp_path: Path) -> None:
    rs = rules(tmp_path)
    policy = rs.policy(100)
    profile = Profile("c")
    advance(profile, [order(T)], T, rs, policy)
    assert set(profile.memberships) == {"buyers"}
    step = advance(profile, [(forget_request("c", T + 1, suppress=False), T + 1)], T + 1, rs, policy)
    assert [(c.segment, c.change, c.reason) for c in step.changes] == [("buyers", "exited", FORGOTTEN)]
    assert step.deletions == [Deletion("c", T + 1, False)]
    assert (profile.forgotten, profile.traits, profile.history, profile.counts, profile.memberships) == (T + 1, {}, [], {}, {})
    assert profile.seq == 2 and profile.deadline is None
    # A timer much later decides nothing for a tombstone ("quiet" would otherwise hold).
    assert advance(profile, [], T + 10 * 86_400_000, rs, policy).changes == []
    # An unsuppressed id starts afresh with its next event; seq continues.
    again = advance(profile, [order(T + 5)], T + 5, rs, policy)
    assert [(c.segment, c.seq) for c in again.changes] == [("buyers", 3)] and profile.forgotten is None


def test_suppressed_ids_drop_later_events(tmp_path: Path) -> None:
    rs = rules(tmp_path)
    profile = Profile("c")
    step = advance(profile, [order(T), (forget_request("c", T + 1, suppress=True), T + 1), order(T + 2)], T + 2, rs, rs.policy(100))
    assert [c.change for c in step.changes] == ["entered", "exited"] and step.suppressed == 1
    assert profile.suppressed and profile.counts == {}
    restored = Profile.from_bytes(profile.to_bytes())
    assert (restored.forgotten, restored.suppressed) == (T + 1, True)


def test_consent_denied_for_a_purpose_keeps_the_customer_out_of_its_segments_and_models(tmp_path: Path) -> None:
    from stream.models.lifecycle import Modelling

    (tmp_path / "r.yaml").write_text(
        "segments:\n"
        "  - {name: retarget, purpose: Advertising, condition: {event: Order Completed, within: 1d}}\n"
        "  - {name: buyers, condition: {event: Order Completed, within: 1d}}\n"
        "models: {purpose: analytics}\n"
    )
    rs = load_rules(tmp_path)
    assert rs.models is not None
    models = Modelling(rs.models)
    profile = Profile("c")
    step = advance(profile, [order(T)], T, rs, rs.policy(100), models)
    assert sorted(profile.memberships) == ["buyers", "retarget"] and step.training and profile.examples
    no_ads = {"type": "track", "event": "Page", "context": {"consent": {"categoryPreferences": {"Advertising": False}}}}
    step = advance(profile, [(no_ads, T + 1)], T + 1, rs, rs.policy(100))
    assert [(c.segment, c.change, c.reason) for c in step.changes] == [("retarget", "exited", "no consent for advertising")]
    no_analytics = {"type": "track", "event": "Page", "context": {"consent": {"categoryPreferences": {"Analytics": False}}}}
    step = advance(profile, [(no_analytics, T + 2), order(T + 3)], T + 3, rs, rs.policy(100), models)
    assert step.training == [] and profile.examples == {} and profile.scores == {}
    assert profile.consent == {"advertising": False, "analytics": False}


def test_pii_trait_values_are_hashed_or_dropped_in_published_reasons(tmp_path: Path) -> None:
    from dataclasses import replace

    (tmp_path / "r.yaml").write_text("segments:\n  - {name: not_ann, condition: {not: {trait: email, eq: x@y.z}}}\n")
    rs = load_rules(tmp_path)
    identify = {"type": "identify", "traits": {"email": "Ann@Example.com", "plan": "pro"}}
    for mode, shown in (("hash", '"sha256:'), ("drop", '"<redacted>"')):
        policy = replace(rs.policy(100), pii_traits=("email",), pii_mode=mode)
        [change] = advance(Profile("c"), [(identify, T)], T, rs, policy).changes
        assert "Ann@Example.com" not in change.reason and shown in change.reason
    [plain] = advance(Profile("c"), [(identify, T)], T, rs, rs.policy(100)).changes
    assert "Ann@Example.com" in plain.reason  # no PII configured: as the condition saw it
