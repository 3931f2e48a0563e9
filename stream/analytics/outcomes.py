"""What entrants of a segment did after entering, and treatment compared with holdout; pure functions.

An entrant's **window** is ``(entered_at, entered_at + within]``: the event that made the
customer enter is not counted (it happened at ``entered_at``), a goal event exactly ``within``
later is. Per entrant:

* ``converted`` — at least one goal event (default ``Order Completed``) in the window;
* ``delivered``, ``opened``, ``clicked`` — at least one ``Email Delivered`` or ``Email Sent``,
  ``Email Opened``, ``Email Link Clicked`` (Segment's email spec events) in the window;
* ``revenue`` — the sum of the revenue of the window's events (``revenue``, else ``total``,
  as the profile's ``$revenue`` counts it).

Rates are shares of entrants: conversion among all of the arm's entrants; open and click rates
among entrants who were sent an email in their window when the data has such events at all
(``email_base: "delivered"``), else among all entrants (``"members"``). Revenue per member is
the mean over all entrants, zeros included. :func:`compare` adds per arm the Wilson interval
(rates), the difference treatment − control with Newcombe's interval (rates) or Welch's
(revenue), and the lift treatment / control − 1.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, NamedTuple

from stream.analytics.intervals import newcombe, welch, wilson

EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Link Clicked"
EMAIL_SENT = frozenset({"Email Delivered", "Email Sent"})
TREATMENT, CONTROL, ALL = "treatment", "control", "all"


class Outcome(NamedTuple):
    """One event that may count as an outcome: its time, name and revenue."""

    ts: int
    name: str
    revenue: float


class Entry(NamedTuple):
    """A customer's entry into a segment: when, and in which holdout group (``None``: no holdout)."""

    customer_id: str
    at: int
    group: str | None


@dataclass(frozen=True, slots=True)
class MemberOutcome:
    """What one entrant did in its window."""

    converted: bool
    delivered: bool
    opened: bool
    clicked: bool
    revenue: float


def member_outcome(at: int, events: Sequence[Outcome], goal: str, within_ms: int) -> MemberOutcome:
    """The outcome of an entry at ``at`` given the customer's events sorted by time.

    >>> events = [Outcome(10, "Order Completed", 5.0), Outcome(20, "Email Opened", 0.0), Outcome(99, "Order Completed", 7.0)]
    >>> member_outcome(10, events, "Order Completed", 50)
    MemberOutcome(converted=False, delivered=False, opened=True, clicked=False, revenue=0.0)
    """
    start = bisect.bisect_right(events, at, key=lambda e: e.ts)
    end = bisect.bisect_right(events, at + within_ms, key=lambda e: e.ts)
    window = events[start:end]
    names = {e.name for e in window}
    return MemberOutcome(
        converted=goal in names,
        delivered=not names.isdisjoint(EMAIL_SENT),
        opened=EMAIL_OPENED in names,
        clicked=EMAIL_CLICKED in names,
        revenue=sum(e.revenue for e in window),
    )


def compare(arms: Mapping[str, Sequence[MemberOutcome]], confidence: float) -> dict[str, Any]:
    """Per metric, each arm's figures and (with both ``treatment`` and ``control``) difference, interval and lift."""
    everyone = [o for outcomes in arms.values() for o in outcomes]
    base = "delivered" if any(o.delivered for o in everyone) else "members"

    def emailed(outcomes: Sequence[MemberOutcome]) -> list[MemberOutcome]:
        return [o for o in outcomes if o.delivered] if base == "delivered" else list(outcomes)

    return {
        "email_base": base,
        "conversion": _rate({arm: [o.converted for o in outcomes] for arm, outcomes in arms.items()}, confidence),
        "email_open": _rate({arm: [o.opened for o in emailed(outcomes)] for arm, outcomes in arms.items()}, confidence),
        "email_click": _rate({arm: [o.clicked for o in emailed(outcomes)] for arm, outcomes in arms.items()}, confidence),
        "revenue_per_member": _mean({arm: [o.revenue for o in outcomes] for arm, outcomes in arms.items()}, confidence),
    }


def _rate(arms: Mapping[str, list[bool]], confidence: float) -> dict[str, Any]:
    """A proportion per arm with its Wilson interval; the Newcombe interval of treatment − control."""
    figures: dict[str, Any] = {
        arm: {"n": len(flags), "count": sum(flags), "rate": sum(flags) / len(flags) if flags else None, "ci": wilson(sum(flags), len(flags), confidence)}
        for arm, flags in arms.items()
    }
    out: dict[str, Any] = {"arms": figures}
    if TREATMENT in figures and CONTROL in figures:
        t, c = figures[TREATMENT], figures[CONTROL]
        out.update(_difference(t["rate"], c["rate"]))
        out["difference_ci"] = newcombe(t["count"], t["n"], c["count"], c["n"], confidence)
    return out


def _mean(arms: Mapping[str, list[float]], confidence: float) -> dict[str, Any]:
    """A mean per arm; Welch's interval of treatment − control."""
    figures = {arm: {"n": len(values), "total": sum(values), "mean": fmean(values) if values else None} for arm, values in arms.items()}
    out: dict[str, Any] = {"arms": figures}
    if TREATMENT in arms and CONTROL in arms:
        out.update(_difference(figures[TREATMENT]["mean"], figures[CONTROL]["mean"]))
        out["difference_ci"] = welch(arms[TREATMENT], arms[CONTROL], confidence)
    return out


def _difference(treated: float | None, control: float | None) -> dict[str, float | None]:
    """``difference`` (treatment − control) and ``lift`` (treatment / control − 1; ``None`` when control is 0)."""
    if treated is None or control is None:
        return {"difference": None, "lift": None}
    return {"difference": treated - control, "lift": treated / control - 1 if control else None}
