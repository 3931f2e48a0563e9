"""One customer's step, pure: apply new events one by one, deciding changes after each.

Changes are a function of the customer's event sequence and the evaluation time,
not of how the events happened to be batched: a redelivered or re-batched stream
decides the same changes. The worker, timers and replay all call :func:`advance`.

With learned models (``models:`` in the rules) each event also resolves the
delayed labels it decides, rescores the customer with the newest model snapshot
before the rules are evaluated, and may open new training examples; see
:mod:`stream.models.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.models.lifecycle import Modelling
from stream.models.records import TrainingRecord
from stream.output.changes import Change, VerdictLike, decide, next_deadline
from stream.state.profile import HistoryPolicy, Profile, apply_event, first_delivery, trim_history


class Evaluator(Protocol):
    """What a step needs of a rule set."""

    def evaluate(self, profile: Profile, now: int) -> dict[str, VerdictLike]: ...

    def group(self, customer_id: str, segment: str) -> str | None: ...

    def apply_points(self, profile: Profile, record: dict[str, Any], ts: int) -> None: ...

    def points_at(self, profile: Profile, now: int) -> dict[str, float]: ...


@dataclass
class Step:
    """What one step decided: segment changes and training records (both for the outbox), and duplicates skipped."""

    changes: list[Change] = field(default_factory=list)
    training: list[TrainingRecord] = field(default_factory=list)
    duplicates: int = 0


def advance(
    profile: Profile,
    events: Iterable[tuple[dict[str, Any], int]],
    now: int,
    rules: Evaluator,
    policy: HistoryPolicy,
    models: Modelling | None = None,
) -> Step:
    """Apply ``(record, event_time)`` pairs in order, decide changes at ``now``, set the next deadline.

    A record whose ``messageId`` the profile already applied is skipped and counted.
    """
    step = Step()
    verdicts = None
    for record, ts in events:
        if not first_delivery(profile, record, ts):
            step.duplicates += 1
            continue
        if models is not None:
            step.training += models.before_event(profile, record, ts)
        apply_event(profile, record, ts, policy)
        rules.apply_points(profile, record, ts)
        points = _rescore(profile, now, rules, models)
        verdicts = rules.evaluate(profile, now)
        step.changes += decide(profile, verdicts, now, rules.group)
        if models is not None:
            step.training += models.after_event(profile, ts, points)
    if models is not None:
        step.training += models.expire(profile, now)
    if verdicts is None:
        _rescore(profile, now, rules, models)
        verdicts = rules.evaluate(profile, now)
        step.changes += decide(profile, verdicts, now, rules.group)
    trim_history(profile, now, policy)
    deadlines = [d for d in (next_deadline(verdicts), models and models.deadline(profile, now)) if d is not None]
    profile.deadline = min(deadlines) if deadlines else None
    return step


def _rescore(profile: Profile, now: int, rules: Evaluator, models: Modelling | None) -> dict[str, float]:
    points = rules.points_at(profile, now)
    if models is not None:
        models.score(profile, now, points)
    return points
