"""Identity resolution, pure: which ids a record links, and moving a profile into its survivor.

A customer's profile lives under the id its events are keyed by (``userId``, else
``anonymousId``). An ``identify`` carrying both a ``userId`` and another
``anonymousId``, or an ``alias`` (``previousId`` -> ``userId``), **links** the other id
to the survivor (the ``userId``). The two ids may live on different partitions,
owned by different workers, so the merge is two ordered hops through the events
topic, each applied exactly once by the owner in its ordinary atomic step:

1. the survivor's owner records the link and sends ``merge_out`` to the other id;
2. the other id's owner exits that id's memberships, turns its profile into a
   **redirect** (``merged_into``) and sends ``merge_in``, carrying the profile's data,
   to the survivor; later events for the merged-away id are forwarded there;
3. the survivor's owner combines the data (:func:`combine`) and re-evaluates the
   segments on the merged profile.

Every hop is a record in the sender's outbox (published once in effect) with a
deterministic ``messageId``, so a republished hop is dropped by the receiver's
message-id dedup. Precedence when combining: per trait, the newest value by event
time wins; counts, revenue and declared scores add up; first/last seen widen; the
event histories interleave by time.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from stream.state.profile import Profile, clear, history_entry, iso

MERGE_OUT = "merge_out"
MERGE_IN = "merge_in"
CLAIM = "claim"
#: Traits matched deterministically by default: the same normalized value means the same customer.
MATCH_TRAITS = ("email", "phone")
_PHONE_NOISE = str.maketrans("", "", " -.()/")
_NAMESPACE = uuid.UUID("8c1d6f0e-2b7a-4e55-b0a4-93f1c2d7e6a8")


def linked_ids(profile: Profile, record: dict[str, Any]) -> list[str]:
    """Ids that ``record`` links to ``profile`` (the survivor) and that are not linked yet."""
    kind = record["type"]
    other = None
    if kind == "identify" and record.get("userId") is not None:
        other = record.get("anonymousId")
    elif kind == "alias":
        other = record.get("previousId")
    if other is None or str(other) == profile.customer_id or str(other) in profile.aliases:
        return []
    return [str(other)]


def merge_out_request(other: str, survivor: str, ts: int) -> dict[str, Any]:
    """The record asking ``other``'s owner to merge it into ``survivor``."""
    return {"type": MERGE_OUT, "userId": other, "into": survivor, "ts": ts, "timestamp": iso(ts), "messageId": f"merge-out:{other}:{survivor}"}


def merge_in_record(profile: Profile, survivor: str, ts: int) -> dict[str, Any]:
    """The record carrying ``profile``'s data to ``survivor``'s owner."""
    state = {
        "traits": profile.traits,
        "trait_times": profile.trait_times,
        "counts": profile.counts,
        "revenue": profile.revenue,
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "history": [[e.ts, e.name, e.props] for e in profile.history],
        "last": profile.last,
        "points": profile.points,
        "seen": profile.seen,
        "aliases": profile.aliases,
        "groups": profile.groups,
    }
    return {
        "type": MERGE_IN,
        "userId": survivor,
        "from": profile.customer_id,
        "state": state,
        "ts": ts,
        "timestamp": iso(ts),
        "messageId": f"merge-in:{profile.customer_id}:{survivor}",
    }


def redirect(profile: Profile, survivor: str) -> None:
    """Turn ``profile`` into a redirect to ``survivor``: no data (see :func:`stream.state.profile.clear`)."""
    clear(profile)
    profile.merged_into = survivor


def forwarded(record: dict[str, Any], survivor: str) -> dict[str, Any]:
    """An event sent to a merged-away id, re-addressed to its survivor (same ``messageId``, or a stable one)."""
    out = {**record, "userId": survivor}
    if not out.get("messageId"):
        out["messageId"] = f"fwd:{uuid.uuid5(_NAMESPACE, orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode())}"
    return out


def combine(profile: Profile, source: str, state: dict[str, Any]) -> None:
    """Merge the data of ``source`` (a :func:`merge_in_record` state) into ``profile`` (declared scores excluded: see the rule set)."""
    times = state.get("trait_times") or {}
    fallback = state.get("last_seen") or 0
    for name, value in (state.get("traits") or {}).items():
        at = times.get(name, fallback)
        if name not in profile.traits or at > profile.trait_times.get(name, profile.last_seen or 0):
            profile.traits[name] = value
            profile.trait_times[name] = at
    for name, n in (state.get("counts") or {}).items():
        profile.counts[name] = profile.counts.get(name, 0) + n
    profile.revenue += state.get("revenue") or 0.0
    for attr, pick in (("first_seen", min), ("last_seen", max)):
        theirs, ours = state.get(attr), getattr(profile, attr)
        setattr(profile, attr, theirs if ours is None else ours if theirs is None else pick(ours, theirs))
    history = profile.history + [history_entry(h) for h in state.get("history") or []]
    profile.history = sorted(history, key=lambda e: e.ts)
    for name, at in (state.get("last") or {}).items():
        profile.last[name] = max(at, profile.last.get(name, at))
    for message_id, at in (state.get("seen") or {}).items():
        profile.seen.setdefault(message_id, at)
    for group, traits in (state.get("groups") or {}).items():
        profile.groups.setdefault(group, {}).update(traits)
    for alias in [source, *(state.get("aliases") or [])]:
        if alias != profile.customer_id and alias not in profile.aliases:
            profile.aliases.append(alias)


def identifier(trait: str, value: Any) -> str | None:
    """The matching key of a trait value: ``email:<lower-cased, trimmed>``, ``phone:<E.164>``; ``None`` if unusable."""
    if not isinstance(value, str):
        return None
    if trait == "phone":
        digits = value.strip().translate(_PHONE_NOISE)
        if digits.startswith("00"):
            digits = "+" + digits[2:]
        ok = digits.startswith("+") and digits[1:].isdigit() and 8 <= len(digits) - 1 <= 15
        return f"phone:{digits}" if ok else None
    text = value.strip().lower()
    if trait == "email" and "@" not in text:
        return None
    return f"{trait}:{text}" if text else None


def claims(profile: Profile, traits: dict[str, Any], match: tuple[str, ...], ts: int) -> list[dict[str, Any]]:
    """Claim records for the matched identifiers in ``traits`` that ``profile`` has not claimed yet."""
    out = []
    for trait in match:
        key = identifier(trait, traits.get(trait))
        if key is not None and key not in profile.aliases:
            profile.aliases.append(key)
            out.append(
                {"type": CLAIM, "userId": key, "claimant": profile.customer_id, "ts": ts, "timestamp": iso(ts), "messageId": f"claim:{key}:{profile.customer_id}"}
            )
    return out
