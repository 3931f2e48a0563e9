"""Declared scores (lead score, engagement): points per event that decay with a half-life, and ``score:`` conditions.

.. code-block:: yaml

    scores:
      - name: lead_score
        half_life: 14d                      # optional; without it points never decay
        points:
          - {event: Product Viewed}         # 1 point (the default)
          - {event: page, where: {name: {eq: Pricing}}, points: 5}
          - {event: page, of: scroll_depth, points: 0.02, max: 2}   # 0.02 per % scrolled, at most 2

An event matching several point rules of a score earns their sum; ``of`` earns
``points`` times the event's numeric property (numeric strings count; missing or
not a number: 0), and ``max`` caps one event's points (absolute value).

A profile keeps each score as ``[value, as_of_ms]`` (``Profile.points``); the value
at time ``t`` is ``value * 2 ** (-(t - as_of) / half_life)``, so the order in which
events arrive does not matter (:func:`add_points`). ``{score: lead_score, gte: 20}``
compares that value (0 without an entry) and its verdict's deadline is the exact
ms at which the decaying value flips the comparison (:func:`next_crossing`).
``{score: churn, gt: 0.7}`` reads a model score instead (``Profile.scores``, see
:mod:`stream.models`); a customer not scored yet fails every operator but
``exists: false``, like a missing trait, and only a new score changes it.

>>> value_at(add_points(None, 10.0, 0, 1000), 1000, 2000)
2.5
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, ClassVar

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from stream.models import config  # a module: stream.models.config imports stream.rules
from stream.rules.durations import Duration
from stream.rules.filters import ANY_EVENT, EventFilter
from stream.rules.model import Compiled, ConditionModel, Horizon, NamedRule
from stream.rules.operators import ValueTest, as_number, show
from stream.rules.references import check_segment_name
from stream.rules.verdict import Verdict
from stream.state.profile import BEHAVIOUR_TYPES, Event, Profile, event_props, history_name

#: A stored declared score: ``[value, as_of_ms]``.
Entry = list[float]


# --- decay: pure functions over entries -------------------------------------------------------


#: The largest growth of a value before ``as_of`` (events over a thousand half-lives in the future), so it stays finite.
_MAX_EXPONENT = 1023.0
#: How many halvings of 1.0 make 0.0 (subnormals end at 2**-1074); a value below 1.0 gets there sooner.
_UNDERFLOW = 1075.0


def _factor(elapsed: float, half_life: int | None) -> float:
    return 1.0 if half_life is None else 2.0 ** min(-elapsed / half_life, _MAX_EXPONENT)


def add_points(entry: Entry | None, points: float, ts: int, half_life: int | None) -> Entry:
    """``entry`` after an event at ``ts`` earned ``points`` (a new entry, ``entry`` is not changed).

    A later event decays the value to ``ts`` and adds; an earlier (out-of-order) one adds its
    points decayed to ``as_of``, so any order of the same events gives the same value.

    >>> add_points([8.0, 1000], 1.0, 2000, 1000)
    [5.0, 2000]
    >>> add_points([8.0, 1000], 4.0, 0, 1000)
    [10.0, 1000]
    """
    if entry is None:
        return [points, ts]
    value, as_of = entry
    if ts >= as_of:
        return [value * _factor(ts - as_of, half_life) + points, ts]
    return [value + points * _factor(as_of - ts, half_life), as_of]


def value_at(entry: Entry | None, half_life: int | None, now: int) -> float:
    """The value of ``entry`` at ``now`` (0 without an entry).

    The formula also holds before ``as_of`` (an entry with future-dated events): the
    value is then larger than stored (at most ``2**1023`` times), and decays to it by ``as_of``.
    """
    if entry is None:
        return 0.0
    value, as_of = entry
    return value * _factor(now - as_of, half_life)


def _side(value: float, threshold: float) -> int:
    return (value > threshold) - (value < threshold)


def next_crossing(entry: Entry | None, half_life: int | None, thresholds: Iterable[float], now: int) -> int | None:
    """The first ms after ``now`` at which the decaying value is on another side of one of ``thresholds``.

    Sides are above, equal and below. The value moves monotonically toward 0, so it
    passes each threshold between its current value and 0 (where it underflows, after
    about a thousand half-lives) once: at the returned time its side differs from
    now's, one ms earlier it does not. The value may equal a threshold for one ms,
    where ``gt 20`` flips and ``gte 20`` flips one ms later (:class:`ScoreCondition`
    skips crossings that do not flip its comparison). ``None`` when no threshold lies
    ahead or nothing decays.

    >>> next_crossing([40.0, 0], 1000, [20, 50], 0)  # 40 halves to exactly 20 at 1000
    1000
    >>> next_crossing([40.0, 0], 1000, [20, 50], 1000)
    1001
    """
    if entry is None or half_life is None:
        return None
    current = value_at(entry, half_life, now)
    if current == 0:
        return None
    ahead = [x for x in thresholds if 0 <= x <= current or current <= x <= 0]
    return min((_crossing(entry, half_life, x, now) for x in ahead), default=None)


def _crossing(entry: Entry, half_life: int, threshold: float, now: int) -> int:
    """The first ms after ``now`` on another side of ``threshold``: from the exact time, checked with ``value_at`` itself."""
    value, as_of = entry
    side = _side(value_at(entry, half_life, now), threshold)

    def moved(at: int) -> bool:
        return _side(value_at(entry, half_life, at), threshold) != side

    zero = _UNDERFLOW + min(0.0, math.log2(abs(value)))  # halvings after which value_at is 0.0
    halvings = min(math.log2(abs(value)) - math.log2(abs(threshold)), zero) if threshold else zero
    lo, hi = now, max(now + 1, math.floor(as_of + half_life * halvings) + 1)
    step = 1
    while not moved(hi):  # float error made the estimate early: gallop forward
        lo, hi, step = hi, hi + step, step * 2
    if hi - 2 > lo and not moved(hi - 2):
        lo = hi - 2  # the usual case: the estimate is right within a ms
    while hi - lo > 1:  # "moved" is monotone: the value never comes back
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if moved(mid) else (mid, hi)
    return int(hi)


# --- declarations ------------------------------------------------------------------------------


class PointRule(EventFilter):
    """The points an event named ``event`` (passing ``where``) earns: ``points``, or ``points`` × its property ``of``.

    >>> PointRule(event="page", of="scroll_depth", points=0.02, max=1).earned(Event(0, "page", {"scroll_depth": "80"}))
    1.0
    """

    points: Annotated[float, Field(allow_inf_nan=False)] = 1
    of: Annotated[str | None, Field(min_length=1)] = None
    max: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None

    def earned(self, event: Event) -> float:
        """The points ``event`` earns (its name is known to match; ``where`` is checked here)."""
        accepts = self.accepts
        if accepts is not None and not accepts(event):
            return 0.0
        if self.of is None:
            points = self.points
        else:
            number = as_number(event.props.get(self.of))
            points = 0.0 if number is None else number * self.points
        if self.max is not None and abs(points) > self.max:
            return math.copysign(self.max, points)
        return points


def check_score_name(value: str) -> str:
    """``value`` if it can name a declared score (like a segment name, not a model score), else ``ValueError``."""
    check_segment_name(value)
    if value in config.SCORES:
        raise ValueError(f"'{value}' is a score the models produce ({', '.join(config.SCORES)}); choose another name, e.g. '{value}_points'")
    return value


def check_known_score(name: str, declared: Mapping[str, Any]) -> str:
    """``name`` if it is a declared or model score, else ``ValueError`` naming the closest known score."""
    if name in declared or name in config.SCORES:
        return name
    close = difflib.get_close_matches(name, [*declared, *config.SCORES], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ValueError(f"unknown score '{name}'{hint}; declare it under 'scores:' or use a model score ({', '.join(config.SCORES)})")


class ScoreDefinition(NamedRule):
    """A declared score: the points events earn and the half-life they decay with (none: they never decay)."""

    noun: ClassVar[str] = "score"

    description: str = ""
    half_life: Duration | None = None
    points: Annotated[list[PointRule], Field(min_length=1)]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_score_name(value)


@dataclass(frozen=True)
class PointTable:
    """Which point rules each event name can match, so an event that no score counts costs one dict lookup."""

    by_name: Mapping[str, tuple[tuple[ScoreDefinition, tuple[PointRule, ...]], ...]]
    others: tuple[tuple[ScoreDefinition, tuple[PointRule, ...]], ...]

    @classmethod
    def build(cls, scores: Mapping[str, ScoreDefinition]) -> PointTable:
        """The table of every point rule of ``scores``; ``$any`` rules apply to every name."""
        named: dict[str, dict[str, list[PointRule]]] = {}
        anywhere: dict[str, list[PointRule]] = {}
        for score in scores.values():
            for rule in score.points:
                by_score = anywhere if rule.event == ANY_EVENT else named.setdefault(rule.event, {})
                by_score.setdefault(score.name, []).append(rule)

        def entries(by_score: dict[str, list[PointRule]]) -> tuple[tuple[ScoreDefinition, tuple[PointRule, ...]], ...]:
            names = {**dict.fromkeys(by_score), **dict.fromkeys(anywhere)}
            return tuple((scores[n], (*by_score.get(n, ()), *anywhere.get(n, ()))) for n in names)

        return cls({event: entries(by_score) for event, by_score in named.items()}, entries({}))

    def apply(self, profile: Profile, record: dict[str, Any], ts: int) -> None:
        """Add the points of one validated events-topic record (track, page or screen) at ``ts`` to ``profile.points``."""
        if record["type"] not in BEHAVIOUR_TYPES:
            return
        name = history_name(record)
        matches = self.by_name.get(name, self.others)
        if not matches:
            return
        event = Event(ts, name, event_props(record))
        for score, rules in matches:
            earned = sum(rule.earned(event) for rule in rules)
            if earned:
                profile.points[score.name] = add_points(profile.points.get(score.name), earned, ts, score.half_life)


# --- the condition -----------------------------------------------------------------------------


def _numeric(operand: Any) -> bool:
    values = operand if isinstance(operand, list) else [operand]
    return all(type(v) in (int, float) for v in values)


def _shown(value: Any) -> str:
    return format(value, ".6g") if type(value) is float else show(value)


class ScoreCondition(ValueTest, ConditionModel):
    """A declared score (decayed to now, 0 without points) or a model score, compared with one operator.

    Validated with ``context={"scores": declared}`` (as the loader and
    :class:`~stream.rules.ruleset.RuleSet` do), an unknown name is an error and a
    declared score is bound to its declaration (its half-life).

    >>> ScoreCondition(score="churn", gt=0.7).evaluate(Profile("c", scores={"churn": {"v": 0.9, "m": 1}}), 0).reason
    'score churn = 0.9 > 0.7'
    """

    kind: ClassVar[str] = "score"

    score: str
    _definition: ScoreDefinition | None = PrivateAttr(None)

    @field_validator("score")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        check_segment_name(value)
        declared = info.context.get("scores") if isinstance(info.context, dict) else None
        return value if declared is None else check_known_score(value, declared)

    @model_validator(mode="after")
    def _numbers(self) -> ScoreCondition:
        op, operand = self.operator
        if op != "exists" and self.score not in config.TEXT_SCORES and not _numeric(operand):
            raise ValueError(f"score '{self.score}' is a number; compare it with numbers, e.g. 'gte: 20', got {op}: {show(operand)}")
        return self

    def model_post_init(self, context: Any) -> None:
        if isinstance(context, dict) and context.get("scores") is not None:
            self._definition = context["scores"].get(self.score)

    @property
    def definition(self) -> ScoreDefinition:
        """The declaration of the declared score this condition reads; ``KeyError`` when not bound to one."""
        if self._definition is None:
            raise KeyError(
                f"score {self.score!r} is not bound to its declaration; evaluate it through a RuleSet, "
                "or validate it with context={'scores': {name: ScoreDefinition}}"
            )
        return self._definition

    @cached_property
    def thresholds(self) -> tuple[float, ...]:
        """The numbers the score is compared with, ascending."""
        _, operand = self.operator
        values = operand if isinstance(operand, list) else [operand]
        return tuple(sorted({v for v in values if type(v) in (int, float)}))

    def compile(self) -> Compiled:
        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            deadline = None
            if self.score in config.SCORES:
                value = profile.scores.get(self.score, {}).get("v")
                holds = self.predicate(value)
            else:
                half_life = self.definition.half_life
                entry = profile.points.get(self.score)
                value = value_at(entry, half_life, now)
                holds = self.predicate(value)
                deadline = self._deadline(entry, half_life, now, holds)
            return Verdict(holds, self._reason, deadline, value, holds)

        return evaluate

    def _reason(self, value: Any, holds: bool) -> str:
        if value is None:
            return f"score {self.score} missing"
        if holds:
            return f"score {self.score} = {_shown(value)} {self.text}"
        return f"score {self.score} = {_shown(value)}, not {self.text}"

    def _deadline(self, entry: Entry | None, half_life: int | None, now: int, holds: bool) -> int | None:
        at = next_crossing(entry, half_life, self.thresholds, now)
        while at is not None and self.predicate(value_at(entry, half_life, at)) == holds:
            at = next_crossing(entry, half_life, self.thresholds, at)
        return at

    def scores(self) -> set[str]:
        return {self.score}

    def event_windows(self) -> dict[str, Horizon]:
        return {ANY_EVENT: None}  # declared scores earn points from events, model scores are rescored on every event
