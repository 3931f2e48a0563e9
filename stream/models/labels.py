"""Delayed labels: examples opened at sampling points, labelled by later events or by timers.

**Sampling points** are a grid per customer: the first at the customer's first event,
then every ``models.sample_every`` after the previous one (:func:`next_sample`) — reached
by a timer or, when an event comes later than a grid point, just before that event is
applied (so the features are the customer's as of the grid point). A customer silent
for longer than the churn horizon (the longest horizon without churn) is no longer
sampled; its next event starts a new grid. Because sampling points do not follow
sessions, examples see every recency — the just-active and the drifting-away alike —
which is what a churn model needs to learn.

A sampling point emits an observation (features, no label) and opens one example per
enabled model kind that has none open (:func:`sample`); a kind has at most one open
example per customer. Each example remembers its features at ``t0``, the score
the customer was served then (and its model version) and its segments.

With ``H`` the kind's horizon, an example's window is ``t0 < ts <= t0 + H``:

=======================  ==========================================  ====================================
kind                     an event in the window                      the window is over (at ``t0+H+1``)
=======================  ==========================================  ====================================
``churn``                any event: ``y = 0``, resolved at its ts    ``y = 1``, resolved at ``t0 + H``
``purchase_propensity``  a purchase: ``y = 1``, resolved at its ts   ``y = 0``, resolved at ``t0 + H``
``ltv``                  a purchase adds its revenue                 ``y =`` the revenue, at ``t0 + H``
=======================  ==========================================  ====================================

Events at or before ``t0`` (arriving out of order) never count. :func:`resolve`
takes an event before it is applied, :func:`expire` the passing of time, and
:func:`next_expiry` says when the next window is over. An open example lives in
``Profile.examples[kind]`` as a small orjson-able dict::

    {"t0": 1000, "end": 2_592_001_000, "x": {...}, "served": 0.4, "model": 7, "segments": ["vip"], "revenue": 0.0}

(``revenue`` for ``ltv`` only). Every function returns the records it produced; their
ids depend only on (customer, kind, ``t0``), so producing them again is harmless.
"""

from __future__ import annotations

from typing import Any

from stream.models.config import KINDS, ModelsConfig
from stream.rules.operators import as_number
from stream.models.records import OBSERVATION, TrainingRecord
from stream.state.profile import BEHAVIOUR_TYPES, Profile, event_props, history_name, revenue_of

#: The label of a classifier example whose window passed with no deciding event.
ON_EXPIRY = {"churn": 1.0, "purchase_propensity": 0.0}


def next_sample(profile: Profile, config: ModelsConfig) -> int | None:
    """The customer's next sampling point, ``None`` before its first event or once it went silent (see the module docstring)."""
    if profile.sampled_at is None or profile.last_seen is None:
        return None
    t = profile.sampled_at + config.sample_every
    return t if t <= profile.last_seen + silence(config) else None


def silence(config: ModelsConfig) -> int:
    """How long a silent customer is still sampled: the churn horizon, else the longest enabled horizon."""
    if config.churn.enabled:
        return config.churn.horizon
    return max((config.spec(kind).horizon for kind in config.enabled()), default=config.sample_every)


def sample(profile: Profile, ts: int, x: dict[str, float], config: ModelsConfig) -> list[TrainingRecord]:
    """Sample ``profile`` at ``ts`` with features ``x``: an observation, and an example for each enabled kind with none open."""
    segments = sorted(profile.memberships)
    profile.sampled_at = ts
    for kind in config.enabled():
        if kind in profile.examples:
            continue
        served = profile.scores.get(kind) or {}
        example: dict[str, Any] = {
            "t0": ts,
            "end": ts + config.spec(kind).horizon,
            "x": x,
            "served": served.get("v"),
            "model": served.get("m"),
            "segments": segments,
        }
        if kind == "ltv":
            example["revenue"] = 0.0
        profile.examples[kind] = example
    traits = {name: float(value) for name in config.median_traits() if (value := as_number(profile.traits.get(name))) is not None}
    return [TrainingRecord(profile.customer_id, OBSERVATION, ts, x, segments=tuple(segments), traits=traits)]


def resolve(profile: Profile, record: dict[str, Any], ts: int, config: ModelsConfig) -> list[TrainingRecord]:
    """Label the open examples that the event ``record`` at ``ts`` decides (call before applying it)."""
    purchase = record["type"] in BEHAVIOUR_TYPES and history_name(record) in config.purchase_events
    resolved = []
    for kind in KINDS:
        example = profile.examples.get(kind)
        if example is None or not example["t0"] < ts <= example["end"]:
            continue
        if kind == "churn":
            resolved.append(_close(profile, kind, 0.0, ts))
        elif kind == "purchase_propensity" and purchase:
            resolved.append(_close(profile, kind, 1.0, ts))
        elif kind == "ltv" and purchase:
            example["revenue"] += revenue_of(event_props(record))
    return resolved


def expire(profile: Profile, until: int) -> list[TrainingRecord]:
    """Label the open examples whose window is over at ``until`` (``t0 + H < until``), earliest window first."""
    over = sorted((example["end"], KINDS.index(kind), kind) for kind, example in profile.examples.items() if example["end"] < until)
    return [_close(profile, kind, _expired_label(kind, profile.examples[kind]), end) for end, _, kind in over]


def next_expiry(profile: Profile) -> int | None:
    """When the earliest open example's window is over (its ``t0 + H + 1``), ``None`` with none open."""
    return min((example["end"] + 1 for example in profile.examples.values()), default=None)


def _expired_label(kind: str, example: dict[str, Any]) -> float:
    return example["revenue"] if kind == "ltv" else ON_EXPIRY[kind]


def _close(profile: Profile, kind: str, y: float, resolved_at: int) -> TrainingRecord:
    example = profile.examples.pop(kind)
    return TrainingRecord(
        profile.customer_id,
        kind,
        example["t0"],
        example["x"],
        y=y,
        resolved_at=resolved_at,
        served=example["served"],
        model=example["model"],
        segments=tuple(example["segments"]),
    )
