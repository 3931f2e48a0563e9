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
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.models.lifecycle import Modelling
from stream.models.records import TrainingRecord
from stream.output.changes import Change, VerdictLike, decide, next_deadline
from stream.output.deletions import FORGET, Deletion, forget_request
from stream.output.pii import scrub
from stream.output.routed import Routed
from stream.rules.verdict import Verdict
from stream.state.identity import (
    CLAIM,
    MERGE_IN,
    MERGE_OUT,
    claims,
    combine,
    forwarded,
    linked_ids,
    merge_in_record,
    merge_out_request,
    redirect,
)
from stream.state.profile import HistoryPolicy, Profile, apply_consent, apply_event, first_delivery, forget, trim_history

#: The reason of the ``exited`` changes of a forgotten customer.
FORGOTTEN = "the customer was forgotten (data erased on request)"


class Evaluator(Protocol):
    """What a step needs of a rule set."""

    version: str

    def evaluate(self, profile: Profile, now: int, only: frozenset[str] | None = None) -> dict[str, VerdictLike]: ...

    def affected(self, record: dict[str, Any]) -> frozenset[str] | None: ...

    # Asked only about records for which `affected` gives a set.
    def narrowed(self, record: dict[str, Any], age: int, fresh: AbstractSet[str]) -> frozenset[str]: ...

    def group(self, customer_id: str, segment: str) -> str | None: ...

    def apply_points(self, profile: Profile, record: dict[str, Any], ts: int) -> None: ...

    def points_at(self, profile: Profile, now: int) -> dict[str, float]: ...

    def merge_points(self, profile: Profile, points: dict[str, list[float]]) -> None: ...


@dataclass
class Step:
    """What one step decided for the outbox (changes, training records, deletions) and what it skipped."""

    changes: list[Change] = field(default_factory=list)
    training: list[TrainingRecord] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    routed: list[Routed] = field(default_factory=list)
    duplicates: int = 0
    suppressed: int = 0


def advance(
    profile: Profile,
    events: Iterable[tuple[dict[str, Any], int]],
    now: int,
    rules: Evaluator,
    policy: HistoryPolicy,
    models: Modelling | None = None,
) -> Step:
    """Apply ``(record, event_time)`` pairs in order, decide changes at ``now``, set the next deadline.

    A record whose ``messageId`` the profile already applied is skipped and counted. A
    forget request exits every membership and leaves a tombstone (see
    :mod:`stream.output.deletions`); a suppressed tombstone drops all later events.
    Identity links and merges are routed records (see :mod:`stream.state.identity`).
    """
    step = Step()
    evaluated = False
    # Verdicts stand until their deadline: while every segment's verdict under these rules is
    # known and none is due, an event re-evaluates only the segments it can change.
    known = profile.evaluated == rules.version and (profile.deadline is None or profile.deadline > now)
    deadline = profile.deadline if known else None
    # The segments evaluated at `now` in this step whose verdicts the later events left standing: an event
    # too old for their windows leaves them out of its partial evaluation (see `stream.rules.triggers`).
    fresh: set[str] = set()
    for record, ts in events:
        if _handled_apart(profile, record, ts, now, step):
            known = False  # it may have cleared or redirected the profile
            continue
        kind = record["type"]
        profile.forgotten = None  # an event after an unsuppressed forget starts the profile afresh
        if kind == MERGE_IN:
            combine(profile, str(record["from"]), record["state"])
            rules.merge_points(profile, record["state"].get("points") or {})
        else:
            for other in linked_ids(profile, record):
                step.routed.append(Routed(profile.customer_id, merge_out_request(other, profile.customer_id, ts)))
                profile.aliases.append(other)
            apply_consent(profile, record)  # a record denying a purpose is already not used for it
            if models is not None:
                step.training += models.before_event(profile, record, ts)
            apply_event(profile, record, ts, policy)
            rules.apply_points(profile, record, ts)
            traits = record.get("traits") if kind == "identify" else None
            if traits and policy.match_traits:
                step.routed += [Routed(profile.customer_id, c) for c in claims(profile, traits, policy.match_traits, ts)]
        points = _rescore(profile, now, rules, models)
        only = rules.affected(record) if known and kind != MERGE_IN else None
        if only is not None and fresh:
            only = rules.narrowed(record, now - ts, fresh)
        verdicts = rules.evaluate(profile, now, only)
        if only is None:
            fresh = set(verdicts)
        else:
            fresh.update(verdicts)
        step.changes += decide(profile, verdicts, now, rules.group, complete=only is None)
        # A partial evaluation keeps the earlier deadline too: at worst a timer fires early and finds nothing.
        deadline = _earliest(next_deadline(verdicts), deadline if only is not None else None)
        known = evaluated = True
        profile.evaluated = rules.version
        if models is not None and kind != MERGE_IN:
            step.training += models.after_event(profile, ts, points)
    if profile.forgotten is not None or profile.merged_into is not None:
        profile.deadline = profile.evaluated = None  # tombstones and redirects are never evaluated: they hold no data
        return step
    if models is not None:
        step.training += models.expire(profile, now)
    if not evaluated:
        _rescore(profile, now, rules, models)
        verdicts = rules.evaluate(profile, now)
        step.changes += decide(profile, verdicts, now, rules.group)
        deadline = next_deadline(verdicts)
        profile.evaluated = rules.version
    trim_history(profile, now, policy)
    step.changes = scrub(step.changes, profile, policy.pii_traits, policy.pii_mode)
    profile.deadline = _earliest(deadline, models.deadline(profile, now) if models is not None else None)
    return step


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _handled_apart(profile: Profile, record: dict[str, Any], ts: int, now: int, step: Step) -> bool:
    """Handle a record that is not applied as an event: suppressed, a forget request, a duplicate,
    one for a merged-away id (forwarded), or an identity hop (claim, merge_out). ``False`` for the rest."""
    kind = record["type"]
    if profile.suppressed:
        step.suppressed += 1
    elif kind == FORGET:
        suppress = bool(record.get("suppress"))
        # Every id merged into this customer (redirects, matched identifiers) is forgotten by its own owner.
        step.routed += [Routed(profile.customer_id, forget_request(alias, ts, suppress)) for alias in profile.aliases]
        step.changes += _exit_all(profile, FORGOTTEN, now)
        step.deletions.append(Deletion(profile.customer_id, ts, suppress))
        forget(profile, ts, suppress)
    elif not first_delivery(profile, record, ts):
        step.duplicates += 1
    elif profile.merged_into is not None:
        if kind != MERGE_OUT:  # a merge_out for a merged id was already answered
            step.routed.append(Routed(profile.customer_id, forwarded(record, profile.merged_into)))
    elif kind == CLAIM:
        _claimed(profile, str(record["claimant"]), ts, step)
    elif kind == MERGE_OUT:
        survivor = str(record["into"])
        step.changes += _exit_all(profile, f"merged into customer {survivor}", now)
        step.routed.append(Routed(profile.customer_id, merge_in_record(profile, survivor, ts)))
        redirect(profile, survivor)
    else:
        return False
    return True


def _exit_all(profile: Profile, reason: str, now: int) -> list[Change]:
    return decide(profile, {name: Verdict(False, reason) for name in profile.memberships}, now)


def _claimed(profile: Profile, claimant: str, ts: int, step: Step) -> None:
    """A claim on an identifier: its own empty profile takes the first claimant as owner; the owner merges later ones."""
    if profile.first_seen is None and not profile.aliases:
        redirect(profile, claimant)  # the identifier's profile: from now on every claim goes to its owner
    elif claimant != profile.customer_id and claimant not in profile.aliases:
        step.routed.append(Routed(profile.customer_id, merge_out_request(claimant, profile.customer_id, ts)))
        profile.aliases.append(claimant)


def _rescore(profile: Profile, now: int, rules: Evaluator, models: Modelling | None) -> dict[str, float]:
    """The declared scores' values at ``now``, with the models' scores updated; without models nothing reads them."""
    if models is None:
        return {}
    points = rules.points_at(profile, now)
    models.score(profile, now, points)
    return points
