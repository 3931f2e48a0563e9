"""Keeping personal data off the outbound topics: traits marked PII are hashed or dropped in reasons.

Segment changes carry a ``reason`` naming the values the deciding condition saw,
e.g. ``trait email = "ann@example.com", not ...``. For the traits listed in
``SEGSTREAM_PII_TRAITS``, every occurrence of the customer's value in a reason is
replaced before the change is stored or published: by ``"sha256:<hex>"`` of the
lower-cased, trimmed value (mode ``hash``: joinable with ad platforms' hashed
matching) or by ``"<redacted>"`` (mode ``drop``). Other outbound records carry no
traits (training records hold features, deletions only the id).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from stream.output.changes import Change
from stream.rules.operators import show
from stream.state.profile import Profile

MODES = ("hash", "drop")


def masked(value: Any, mode: str) -> str:
    """How a PII value reads in a reason."""
    if mode == "drop":
        return '"<redacted>"'
    digest = hashlib.sha256(str(value).strip().lower().encode()).hexdigest()
    return f'"sha256:{digest}"'


def scrub(changes: list[Change], profile: Profile, traits: tuple[str, ...], mode: str) -> list[Change]:
    """``changes`` with the profile's values of ``traits`` masked in their reasons."""
    if not changes:
        return changes
    values = [profile.traits[t] for t in traits if isinstance(profile.traits.get(t), (str, int, float)) and not isinstance(profile.traits.get(t), bool)]
    if not values:
        return changes
    out = []
    for change in changes:
        reason = change.reason
        for value in values:
            reason = reason.replace(show(value), masked(value, mode))
        out.append(change if reason == change.reason else dataclasses.replace(change, reason=reason))
    return out
