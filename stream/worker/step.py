"""One customer's step, pure: apply new events one by one, deciding changes after each.

Changes are a function of the customer's event sequence and the evaluation time,
not of how the events happened to be batched: a redelivered or re-batched stream
decides the same changes. The worker, timers and replay all call :func:`advance`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from stream.output.changes import Change, VerdictLike, decide, next_deadline
from stream.state.profile import HistoryPolicy, Profile, apply_event, trim_history


class Evaluator(Protocol):
    """What a step needs of a rule set."""

    def evaluate(self, profile: Profile, now: int) -> dict[str, VerdictLike]: ...

    def group(self, customer_id: str, segment: str) -> str | None: ...


def advance(
    profile: Profile,
    events: Iterable[tuple[dict[str, Any], int]],
    now: int,
    rules: Evaluator,
    policy: HistoryPolicy,
) -> list[Change]:
    """Apply ``(record, event_time)`` pairs in order, decide changes at ``now``, set the next deadline."""
    changes: list[Change] = []
    verdicts = None
    for record, ts in events:
        apply_event(profile, record, ts, policy)
        verdicts = rules.evaluate(profile, now)
        changes += decide(profile, verdicts, now, rules.group)
    if verdicts is None:
        verdicts = rules.evaluate(profile, now)
        changes += decide(profile, verdicts, now, rules.group)
    trim_history(profile, now, policy)
    profile.deadline = next_deadline(verdicts)
    return changes
