"""The one feature function: a customer's profile at time ``now`` -> named finite floats.

Workers call it when they score a customer and at every sampling point (see
:mod:`stream.models.labels`), so the models learn from exactly what they score.
It reads the profile's lifetime counters and makes one pass over its history
(profiles keep at least :data:`~stream.models.config.FEATURE_WINDOW_MS` of it when
models are on). "Purchases" are the events named in ``models.purchase_events``.
Windows are ``(now - 7d, now]`` and ``(now - 30d, now]``; an event later than
``now`` (a skewed client clock) counts as happening at ``now``.

========================  ===============================================================  ===================
feature                   meaning                                                          transform
========================  ===============================================================  ===================
``recency_days``          days since the latest event of any kind (``last_seen``)          days, >= 0
``tenure_days``           days since the first event of any kind (``first_seen``)          days, >= 0
``events``                lifetime behavioural events (track, page, screen)                log1p
``events_7d``             behavioural events in the last 7 days                            log1p
``events_30d``            behavioural events in the last 30 days                           log1p
``active_days_30d``       distinct UTC days with an event in the last 30 days              count, 0-31
``purchases``             lifetime purchase events                                         log1p
``revenue``               lifetime revenue (``revenue``, else ``total``, of every event)   log1p, negative -> 0
``aov``                   average order value: revenue / purchases; 0 without purchases    log1p
``days_since_purchase``   days since the latest purchase; 365 when never                   days, capped at 365
``has_purchased``         whether the customer ever purchased                              0 or 1
``views_30d``             ``Product Viewed`` events in the last 30 days                    log1p
``carts_30d``             ``Product Added`` events in the last 30 days                     log1p
``views_per_purchase``    lifetime ``Product Viewed`` per purchase (per 1 when none)       log1p
``discount_share``        share of the purchases in history with a truthy ``coupon``       ratio, 0-1
                          or ``discount`` property; 0 without purchases in history
``pages_30d``             ``page`` and ``screen`` calls in the last 30 days                log1p
``email_engagement_30d``  ``Email Opened`` + ``Email Link Clicked`` in the last 30 days    log1p
``score.<name>``          current value of each declared score (``lead_score``...)         as is
``trait.<name>``          each trait imputed by median: its value, else the median         as is (numbers only)
========================  ===============================================================  ===================

A value that is not finite (an infinite revenue sent by a client) becomes 0.0.

>>> from stream.models.config import ModelsConfig
>>> from stream.state.profile import Event, Profile
>>> p = Profile("u1", counts={"Order Completed": 1}, revenue=99.0, first_seen=0, last_seen=0,
...             history=[Event(0, "Order Completed", {"coupon": "X"})], last={"Order Completed": 0})
>>> x = features(p, 2 * 86_400_000, ModelsConfig(), {"lead_score": 3.0})
>>> x["recency_days"], x["discount_share"], x["has_purchased"], x["score.lead_score"]
(2.0, 1.0, 1.0, 3.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from stream.models.config import DAY_MS, FEATURE_WINDOW_MS, ModelsConfig
from stream.models.records import Rfm
from stream.rules.operators import as_number
from stream.state.profile import Profile

#: The features behavioural clusters are learned on: frequency, basket, price sensitivity, browsing, recency.
CLUSTER_FEATURES = ("purchases", "aov", "discount_share", "views_30d", "days_since_purchase")

WEEK_MS = 7 * DAY_MS
#: ``days_since_purchase`` of a customer who never purchased, and its cap.
NEVER_DAYS = 365.0
#: Names of the 30-day window counts: feature -> the history names it counts.
WINDOW_COUNTS = {
    "views_30d": ("Product Viewed",),
    "carts_30d": ("Product Added",),
    "pages_30d": ("page", "screen"),
    "email_engagement_30d": ("Email Opened", "Email Link Clicked"),
}


def features(profile: Profile, now: int, config: ModelsConfig, points: Mapping[str, float]) -> dict[str, float]:
    """The features of ``profile`` at ``now`` (see the module table); ``points`` are the declared scores' values."""
    purchase_names = frozenset(config.purchase_events)
    week, month = now - WEEK_MS, now - FEATURE_WINDOW_MS
    in_week = 0
    named: dict[str, int] = {}
    days: set[int] = set()
    bought = discounted = 0
    for event in profile.history:
        if event.name in purchase_names:
            bought += 1
            props = event.props
            if props.get("coupon") or props.get("discount"):
                discounted += 1
        if event.ts <= month:
            continue
        named[event.name] = named.get(event.name, 0) + 1
        days.add(min(event.ts, now) // DAY_MS)
        if event.ts > week:
            in_week += 1

    purchases = _count(profile.counts, purchase_names)
    revenue = max(profile.revenue, 0.0)
    last_purchase = _last_purchase(profile, purchase_names)
    x = {
        "recency_days": _days_since(profile.last_seen, now),
        "tenure_days": _days_since(profile.first_seen, now),
        "events": math.log1p(sum(profile.counts.values())),
        "events_7d": math.log1p(in_week),
        "events_30d": math.log1p(sum(named.values())),
        "active_days_30d": float(len(days)),
        "purchases": math.log1p(purchases),
        "revenue": math.log1p(revenue),
        "aov": math.log1p(revenue / purchases) if purchases else 0.0,
        "days_since_purchase": min(_days_since(last_purchase, now), NEVER_DAYS) if last_purchase is not None else NEVER_DAYS,
        "has_purchased": 1.0 if purchases else 0.0,
        "views_per_purchase": math.log1p(profile.counts.get("Product Viewed", 0) / max(purchases, 1)),
        "discount_share": discounted / bought if bought else 0.0,
        **{name: math.log1p(_count(named, counted)) for name, counted in WINDOW_COUNTS.items()},
        **{f"score.{name}": float(value) for name, value in points.items()},
        **_traits(profile, config),
    }
    return {name: value if math.isfinite(value) else 0.0 for name, value in x.items()}


def rfm_values(profile: Profile, config: ModelsConfig) -> Rfm | None:
    """The raw RFM values of ``profile``, or ``None`` when it never purchased."""
    names = frozenset(config.purchase_events)
    last_purchase = _last_purchase(profile, names)
    frequency = _count(profile.counts, names)
    if last_purchase is None or not frequency:
        return None
    return Rfm(last_purchase, frequency, profile.revenue)


def _count(counts: Mapping[str, int], names: Iterable[str]) -> int:
    return sum(counts.get(name, 0) for name in names)


def _last_purchase(profile: Profile, names: Iterable[str]) -> int | None:
    return max((profile.last[name] for name in names if name in profile.last), default=None)


def _days_since(ts: int | None, now: int) -> float:
    return max(now - ts, 0) / DAY_MS if ts is not None else 0.0


def _traits(profile: Profile, config: ModelsConfig) -> dict[str, float]:
    out = {}
    for name in config.median_traits():
        value = as_number(profile.traits.get(name))
        if value is None:
            value = as_number(profile.imputed.get(name))
        if value is not None:
            out[f"trait.{name}"] = float(value)
    return out
