"""Segment changes: deciding them from verdicts, and their record on the outbound topic.

Deciding is level-triggered: a customer's stored memberships are the last decided
state, and every evaluation compares the rules' verdicts with them. Whatever was
missed (a crash before deciding, a timer that fired late) is therefore decided at
the next evaluation, and a change already decided is never decided again.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from stream.state.profile import Profile, iso, parse_time

#: The UUID namespace of change ids, as bytes.
_ID_NAMESPACE = uuid.UUID("6f1f7c1e-51e3-4b0e-9d7a-5e6b2f0c9a11").bytes
#: The RFC 4122 variant nibble of a UUID by the hash's nibble there (its two low bits are kept).
_VARIANT = {f"{n:x}": "89ab"[n & 3] for n in range(16)}

#: Reason given when a member's segment is no longer in the rule set.
REMOVED_REASON = "segment removed from the rules"


class VerdictLike(Protocol):
    """What deciding needs of a rule verdict."""

    holds: bool
    reason: str
    deadline: int | None


@dataclass(frozen=True, slots=True)
class Change:
    """One ``entered``/``exited`` change of one customer's membership of one segment."""

    customer_id: str
    segment: str
    change: str
    at: int
    seq: int
    reason: str
    group: str | None = None

    @property
    def id(self) -> str:
        """Stable id: the same customer and seq always give the same id, so consumers can drop duplicates.

        It is ``str(uuid.uuid5(namespace, f"{customer_id}\\x00{seq}"))``, formatted here from the SHA-1 digest directly.
        """
        digest = hashlib.sha1(_ID_NAMESPACE + f"{self.customer_id}\x00{self.seq}".encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{_VARIANT[digest[16]]}{digest[17:20]}-{digest[20:32]}"

    def record(self) -> dict[str, Any]:
        """The record published on the segment-changes topic."""
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "segment": self.segment,
            "change": self.change,
            "at": iso(self.at),
            "seq": self.seq,
            "reason": self.reason,
            "group": self.group,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.record())

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Change":
        """Inverse of :meth:`to_bytes`."""
        d = orjson.loads(raw)
        return cls(d["customer_id"], d["segment"], d["change"], parse_time(d["at"]), d["seq"], d["reason"], d.get("group"))


def decide(
    profile: Profile,
    verdicts: Mapping[str, VerdictLike],
    now: int,
    group: Callable[[str, str], str | None] | None = None,
    complete: bool = True,
) -> list[Change]:
    """Compare verdicts with the profile's memberships; update them and return the changes.

    Each change takes the next per-customer ``seq`` and, for segments with a
    holdout, the customer's ``group(customer_id, segment)``. With ``complete``
    verdicts, segments the profile is in but that have no verdict (removed from
    the rules) are exited; otherwise only the segments with a verdict are decided.
    """
    changes: list[Change] = []
    memberships = profile.memberships
    flips = [name for name, verdict in verdicts.items() if verdict.holds != (name in memberships)]
    if complete:
        flips += [name for name in memberships if name not in verdicts]
    for name in sorted(flips):
        verdict = verdicts.get(name)
        holds = verdict is not None and verdict.holds
        profile.seq += 1
        if holds:
            memberships[name] = now
            kind = "entered"
        else:
            del memberships[name]
            kind = "exited"
        reason = verdict.reason if verdict is not None else REMOVED_REASON
        cohort = group(profile.customer_id, name) if group is not None and verdict is not None else None
        changes.append(Change(profile.customer_id, name, kind, now, profile.seq, reason, cohort))
    return changes


def next_deadline(verdicts: Mapping[str, VerdictLike]) -> int | None:
    """The earliest time any verdict could change without a new event."""
    earliest = None
    for verdict in verdicts.values():
        deadline = verdict.deadline
        if deadline is not None and (earliest is None or deadline < earliest):
            earliest = deadline
    return earliest
