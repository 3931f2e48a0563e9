"""Combining conditions: ``all: [...]``, ``any: [...]``, ``not: {...}``.

Reasons: ``all`` that holds joins its children's reasons with `` and ``; ``all``
that fails gives its first failing child's; ``any`` that holds gives its first
holding child's; ``any`` that fails gives ``none of: `` and every reason, joined
with ``; ``; ``not`` gives ``not (<child's reason>)``.

Deadlines are the earliest time the combination could change, which may be
later than its children's earliest: a failing ``all`` keeps failing until every
failing child could hold, so its deadline is the latest of theirs (``None`` if
one of them has none), while a holding ``all`` has the earliest of its
children's. ``any`` is the mirror image and ``not`` keeps its child's. Children
are evaluated in order, and evaluation stops at a child that settles the
verdict until a new event (failing in ``all``, holding in ``any``, no deadline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from stream.rules.model import Compiled, ConditionModel
from stream.rules.verdict import Verdict
from stream.state.profile import Profile

if TYPE_CHECKING:
    from stream.rules.conditions import Condition


def combined(children: Sequence[Compiled], decisive: bool, summary: Callable[[list[str]], str]) -> Compiled:
    """Compiled children combined where one child verdict of ``decisive`` decides (``all``: False, ``any``: True).

    The result is the first decisive child's verdict, until the latest decisive
    deadline; without one, the opposite with ``summary`` of all reasons, until the
    earliest deadline.
    """

    def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
        first: Verdict | None = None
        latest = 0
        earliest: int | None = None
        others = []
        for child in children:
            verdict = child(profile, now, verdicts)
            if verdict.holds != decisive:
                others.append(verdict)
                if verdict.deadline is not None and (earliest is None or verdict.deadline < earliest):
                    earliest = verdict.deadline
                continue
            if first is None:
                first = verdict
            if verdict.deadline is None:
                return first if first.deadline is None else first.restated(decisive, None)
            latest = max(latest, verdict.deadline)
        if first is None:
            return Verdict(not decisive, _summarised, earliest, summary, others)
        return first if first.deadline == latest else first.restated(decisive, latest)

    return evaluate


def _summarised(summary: Callable[[list[str]], str], verdicts: list[Verdict]) -> str:
    return summary([v.reason for v in verdicts])


def _negated(verdict: Verdict) -> str:
    return f"not ({verdict.reason})"


def _both(reasons: list[str]) -> str:
    return " and ".join(reasons)


def _neither(reasons: list[str]) -> str:
    return "none of: " + "; ".join(reasons)


class AllOf(ConditionModel):
    """Holds when every condition in ``all`` holds."""

    kind: ClassVar[str] = "all"

    all: list[Condition] = Field(min_length=1)

    def children(self) -> tuple[ConditionModel, ...]:
        return tuple(self.all)

    def compile(self) -> Compiled:
        return combined(tuple(child.evaluator for child in self.all), False, _both)


class AnyOf(ConditionModel):
    """Holds when at least one condition in ``any`` holds."""

    kind: ClassVar[str] = "any"

    any: list[Condition] = Field(min_length=1)

    def children(self) -> tuple[ConditionModel, ...]:
        return tuple(self.any)

    def compile(self) -> Compiled:
        return combined(tuple(child.evaluator for child in self.any), True, _neither)


class NotOf(ConditionModel):
    """Holds when the condition in ``not`` does not."""

    kind: ClassVar[str] = "not"

    not_: Condition = Field(alias="not")

    def children(self) -> tuple[ConditionModel, ...]:
        return (self.not_,)

    def compile(self) -> Compiled:
        child = self.not_.evaluator

        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            verdict = child(profile, now, verdicts)
            return Verdict(not verdict.holds, _negated, verdict.deadline, verdict)

        return evaluate
