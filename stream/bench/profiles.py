"""Profiles of a workload built in-process by the worker's own step (:func:`stream.worker.step.advance`).

Each customer's events are applied in order and the rules evaluated at ``now``,
exactly as a worker does for a batch holding all of them. The memory part
writes these profiles to Redis; the unit tests compare their memberships with
the SQL baseline's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from stream.rules import RuleSet
from stream.state.profile import HistoryPolicy, Profile
from stream.worker.step import Step, advance


def by_customer(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by ``userId``, each customer's in their given order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["userId"], []).append(record)
    return grouped


def build(
    records: Iterable[dict[str, Any]], rules: RuleSet, policy: HistoryPolicy, now: int
) -> Iterator[tuple[Profile, Step]]:
    """Each customer's profile after all its records, with what the step decided (changes, timers)."""
    for customer, own in by_customer(records).items():
        profile = Profile(customer)
        step = advance(profile, [(r, r["ts"]) for r in own], now, rules, policy)
        yield profile, step


def memberships(profiles: Iterable[Profile], segments: Iterable[str]) -> dict[str, set[str]]:
    """Members of each of ``segments`` among ``profiles``."""
    out: dict[str, set[str]] = {name: set() for name in segments}
    for profile in profiles:
        for name in profile.memberships:
            if name in out:
                out[name].add(profile.customer_id)
    return out


def policy(rules: RuleSet, settings_overrides: Mapping[str, Any] | None = None, max_events: int = 1000) -> HistoryPolicy:
    """The history policy a worker uses with ``rules`` (identity and PII parts from ``settings_overrides``)."""
    return replace(rules.policy(max_events), **dict(settings_overrides or {}))
