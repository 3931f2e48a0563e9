"""Deciding changes from verdicts: pure, no services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.output.changes import REMOVED_REASON, Change, decide, next_deadline
from stream.state.profile import Profile


@dataclass(frozen=True)
class V:
    holds: bool
    reason: str = "r"
    deadline: int | None = None


def test_enter_then_exit_with_increasing_seq() -> None:
    p = Profile("u1")
    first = decide(p, {"a": V(True, "why a"), "b": V(False)}, 100)
    assert [(c.segment, c.change, c.seq, c.reason, c.at) for c in first] == [("a", "entered", 1, "why a", 100)]
    assert p.memberships == {"a": 100}
    assert decide(p, {"a": V(True), "b": V(False)}, 150) == []  # level-triggered: nothing new
    second = decide(p, {"a": V(False, "gone"), "b": V(True, "why b")}, 200)
    assert [(c.segment, c.change, c.seq) for c in second] == [("a", "exited", 2), ("b", "entered", 3)]
    assert p.memberships == {"b": 200} and p.seq == 3


def test_removed_segment_exits_its_members() -> None:
    p = Profile("u1", memberships={"old": 1}, seq=4)
    [change] = decide(p, {}, 10)
    assert (change.segment, change.change, change.seq, change.reason) == ("old", "exited", 5, REMOVED_REASON)


def test_change_id_is_stable_and_record_round_trips() -> None:
    c = Change("u1", "a", "entered", 1767323045678, 7, "because")
    assert c.id == Change("u1", "b", "exited", 0, 7, "x").id  # id names (customer, seq)
    assert c.id != Change("u1", "a", "entered", 1767323045678, 8, "because").id
    assert c.id != Change("u2", "a", "entered", 1767323045678, 7, "because").id
    assert Change.from_bytes(c.to_bytes()) == c
    assert c.record() == {
        "id": c.id,
        "customer_id": "u1",
        "segment": "a",
        "change": "entered",
        "at": "2026-01-02T03:04:05.678Z",
        "seq": 7,
        "reason": "because",
        "group": None,
    }


@given(st.text(), st.integers(min_value=0, max_value=2**63))
def test_change_id_is_the_uuid5_of_customer_and_seq(customer: str, seq: int) -> None:
    namespace = uuid.UUID("6f1f7c1e-51e3-4b0e-9d7a-5e6b2f0c9a11")
    try:
        expected = str(uuid.uuid5(namespace, f"{customer}\x00{seq}"))
    except UnicodeEncodeError:  # a lone surrogate: no id either way
        with pytest.raises(UnicodeEncodeError):
            Change(customer, "a", "entered", 0, seq, "r").id
        return
    assert Change(customer, "a", "entered", 0, seq, "r").id == expected


def test_holdout_group_is_carried_by_changes_of_existing_segments() -> None:
    p = Profile("u1", memberships={"gone": 1})
    changes = decide(p, {"a": V(True)}, 10, group=lambda cid, seg: f"control:{cid}:{seg}")
    assert [(c.segment, c.group) for c in changes] == [("a", "control:u1:a"), ("gone", None)]


def test_next_deadline_is_the_earliest() -> None:
    assert next_deadline({"a": V(True, deadline=50), "b": V(False, deadline=20), "c": V(True)}) == 20
    assert next_deadline({"a": V(True)}) is None
