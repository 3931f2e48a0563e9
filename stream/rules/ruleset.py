"""Segments, declared scores and the rule set that evaluates all of them for one profile.

A segment is ``name``, ``description``, ``condition`` and an optional
``holdout`` percentage (see :mod:`stream.rules.holdout`). Segments may refer
to each other (``{segment: high_value}``, see :mod:`stream.rules.references`):
the rule set evaluates each segment after the segments it refers to, and
rejects references to unknown segments and references in a circle. Segments may
read scores (``{score: lead_score, gte: 20}``, see :mod:`stream.rules.scores`):
the rule set adds declared scores' points as events arrive and rejects unknown
score names. ``models`` (see :mod:`stream.models.config`) says which scores are learned.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import Field, PrivateAttr, field_validator

from stream.models import config  # a module: stream.models.config imports stream.rules
from stream.rules.conditions import Condition
from stream.rules.errors import RuleError
from stream.rules.filters import ANY_EVENT
from stream.rules.holdout import holdout_group
from stream.rules.model import Compiled, ConditionModel, Horizon, NamedRule, widest
from stream.rules.references import check_segment_name
from stream.rules.scores import PointTable, ScoreCondition, ScoreDefinition, add_points, check_known_score, value_at
from stream.rules.traits import TraitReader
from stream.rules.triggers import Triggers
from stream.rules.verdict import Verdict
from stream.state.profile import BEHAVIOUR_TYPES, STANDARD_PROPERTIES, HistoryPolicy, Profile, history_name


class Segment(NamedRule):
    """One named segment: its description, its condition, its holdout and the file it came from.

    The validation context gives ``source`` (``{"source": path}``) and the declared
    scores its ``score:`` conditions read (``{"scores": {name: ScoreDefinition}}``).
    """

    noun: ClassVar[str] = "segment"

    description: str = ""
    condition: Condition
    holdout: Annotated[float | None, Field(ge=0, le=100)] = None
    #: The consent purpose the segment is used for (e.g. ``advertising``): customers who denied it are never members.
    purpose: Annotated[str | None, Field(min_length=1)] = None
    _scores: Mapping[str, ScoreDefinition] | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_segment_name(value)

    @field_validator("holdout", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if value is not None and (type(value) not in (int, float) or not 0 <= value <= 100):
            raise ValueError(f"expected a percentage from 0 to 100, e.g. 'holdout: 10' keeps 10% as a control group; got {value!r}")
        return value

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        if isinstance(context, dict):
            self._scores = context.get("scores")

    def bound(self, scores: Mapping[str, ScoreDefinition]) -> Segment:
        """This segment with its ``score:`` conditions bound to ``scores`` (itself when they already are)."""
        if self._scores is scores or not self.condition.scores() & set(scores):
            return self
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        return Segment.model_validate(data, context={"source": self.source, "scores": scores})


def evaluation_order(segments: Mapping[str, Segment]) -> list[str]:
    """The segment names, each after the segments it refers to (else in the given order).

    Raises :class:`RuleError` naming each reference to an unknown segment, or
    else each circle of references with its path (``a -> b -> a``).
    """
    errors = []
    for segment in segments.values():
        for name in sorted(segment.condition.segments() - set(segments)):
            close = difflib.get_close_matches(name, list(segments), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            errors.append(f"{segment.location}: refers to unknown segment '{name}'{hint}; define it or fix the name")
    if errors:
        raise RuleError(errors)
    order: list[str] = []
    path: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in path:
            circle = [*path[path.index(name) :], name]
            first = segments[name]
            elsewhere = [f"{n} in {segments[n].source}" for n in circle[1:-1] if segments[n].source != first.source]
            files = f" ({', '.join(elsewhere)})" if elsewhere else ""
            errors.append(f"{first.location}: segments refer to each other in a circle: {' -> '.join(circle)}{files}; remove one of these references")
            return
        path.append(name)
        for reference in sorted(segments[name].condition.segments()):
            visit(reference)
        path.pop()
        order.append(name)

    for name in segments:
        visit(name)
    if errors:
        raise RuleError(errors)
    return order


def unknown_scores(segments: Mapping[str, Segment], scores: Mapping[str, ScoreDefinition]) -> list[str]:
    """One error per score a segment reads that is neither declared in ``scores`` nor a model score."""
    errors = []
    for segment in segments.values():
        for name in sorted(segment.condition.scores()):
            try:
                check_known_score(name, scores)
            except ValueError as exc:
                errors.append(f"{segment.location}: {exc}")
    return errors


@dataclass
class RuleSet:
    """Every segment and declared score, and the ``models:`` section; evaluates every segment for one profile.

    ``version`` is a stable hash of the segments', scores' and models' contents (not
    of their files or order). Raises :class:`RuleError` for references to unknown
    segments or in a circle, and for unknown score names.
    """

    segments: dict[str, Segment]
    scores: dict[str, ScoreDefinition] = field(default_factory=dict)
    models: config.ModelsConfig | None = None
    version: str = field(init=False)
    _conditions: tuple[tuple[str, ConditionModel], ...] = field(init=False, repr=False)
    _evaluators: tuple[tuple[str, Compiled], ...] = field(init=False, repr=False, compare=False)
    _purposes: dict[str, str] = field(init=False, repr=False)
    _holdouts: dict[str, float | None] = field(init=False, repr=False)
    _plans: dict[frozenset[str], tuple[tuple[str, Compiled], ...]] = field(init=False, repr=False, compare=False)
    _points: PointTable = field(init=False, repr=False)
    _triggers: Triggers = field(init=False, repr=False)

    def __post_init__(self) -> None:
        errors = unknown_scores(self.segments, self.scores)
        if errors:
            raise RuleError(errors)
        self.segments = {name: segment.bound(self.scores) for name, segment in self.segments.items()}
        self.version = _version(self)
        self._conditions = tuple((name, self.segments[name].condition) for name in evaluation_order(self.segments))
        self._evaluators = tuple((name, condition.evaluator) for name, condition in self._conditions)
        self._purposes = {name: s.purpose.lower() for name, s in self.segments.items() if s.purpose is not None}
        self._holdouts = {name: s.holdout for name, s in self.segments.items()}
        self._plans = {}
        self._points = PointTable.build(self.scores)
        self._triggers = self._build_triggers()

    def _build_triggers(self) -> Triggers:
        """Per segment, the event names it reads and their windows, and the segments it needs, both with the segments it refers to."""
        imputes = self.models is not None and bool(self.models.imputation)
        reads: dict[str, dict[str, Horizon]] = {}
        needs: dict[str, set[str]] = {}
        for name, condition in self._conditions:  # referenced segments come first
            windows = condition.event_windows()
            if imputes and any(isinstance(node, TraitReader) and node.reads_traits() for node in condition.walk()):
                windows[ANY_EVENT] = None  # an imputed value changes with the population: any event may change it
            refs = condition.segments()
            reads[name] = widest(windows, *(reads[r] for r in refs))
            needs[name] = {name}.union(*(needs[r] for r in refs))
        return Triggers.build(reads, needs)

    def affected(self, record: Mapping[str, Any]) -> frozenset[str] | None:
        """The segments whose verdict applying ``record`` can change, or ``None`` when it may change any.

        Only behavioural records (track, page, screen) without consent are narrowed: the
        verdicts of the other segments stand until their deadline (see ``stream.worker.step``).
        """
        context = record.get("context")
        if record.get("type") not in BEHAVIOUR_TYPES or (isinstance(context, dict) and "consent" in context):
            return None
        return self._triggers.affected(history_name(record))

    def narrowed(self, record: Mapping[str, Any], age: int, fresh: AbstractSet[str]) -> frozenset[str]:
        """Of :meth:`affected` (for a record it does not give ``None``), the segments to re-evaluate after applying
        ``record``, ``age`` ms older than the evaluation time, when the segments in ``fresh`` were evaluated at that
        time since the profile last changed otherwise (see :mod:`stream.rules.triggers`)."""
        return self._triggers.narrowed(history_name(record), age, fresh)

    def evaluate(self, profile: Profile, now: int, only: frozenset[str] | None = None) -> dict[str, Verdict]:
        """The verdict of every segment (or of those in ``only``) for ``profile`` at ``now`` (epoch ms), by name."""
        verdicts: dict[str, Verdict] = {}
        denied = profile.consent and {p for p, granted in profile.consent.items() if not granted}
        for name, evaluate in self._evaluators if only is None else self._plan(only):
            purpose = self._purposes.get(name) if denied else None
            if purpose is not None and purpose in denied:
                verdicts[name] = Verdict(False, f"no consent for {purpose}")
            else:
                verdicts[name] = evaluate(profile, now, verdicts)
        return verdicts

    def _plan(self, only: AbstractSet[str]) -> tuple[tuple[str, Compiled], ...]:
        """The evaluators of the segments in ``only``, in evaluation order; remembered per set (events bring few different ones)."""
        key = only if isinstance(only, frozenset) else frozenset(only)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _PLANS:
                self._plans.clear()
            plan = self._plans[key] = tuple(pair for pair in self._evaluators if pair[0] in key)
        return plan

    def group(self, customer_id: str, segment: str) -> str | None:
        """The customer's holdout group in ``segment``: ``"control"`` or ``"treatment"``, ``None`` without ``holdout``.

        Deterministic: ``"control"`` iff ``int(sha256(f"{segment}:{customer_id}").hexdigest()[:8], 16) / 2**32 * 100 < holdout``,
        so a customer's group in a segment never changes (see :mod:`stream.rules.holdout`). ``KeyError`` for an unknown segment.
        """
        if segment not in self._holdouts:
            self._segment(segment)  # raises the KeyError naming the segments
        holdout = self._holdouts[segment]
        return None if holdout is None else holdout_group(customer_id, segment, holdout)

    def explain(self, profile: Profile, now: int, segment: str) -> dict[str, Any]:
        """Why ``segment`` holds or not for ``profile`` at ``now``; ``KeyError`` for an unknown segment.

        Returns ``{"segment", "holds", "reason", "deadline" (ISO or None), "group", "condition"}``
        where ``condition`` is the condition's explanation tree; a segment it refers
        to appears there by name (``{"kind": "segment", "rule": {"segment": …}, …}``):
        explain that one in turn for its details.
        """
        condition = self._segment(segment).condition
        tree = condition.explain(profile, now, self.evaluate(profile, now))
        return {
            "segment": segment,
            "holds": tree["holds"],
            "reason": tree["reason"],
            "deadline": tree["deadline"],
            "group": self.group(profile.customer_id, segment),
            "condition": tree,
        }

    def _segment(self, name: str) -> Segment:
        if name not in self.segments:
            raise KeyError(f"unknown segment {name!r}; the rules define {', '.join(sorted(self.segments)) or 'none'}")
        return self.segments[name]

    def lookback_ms(self) -> int:
        """The longest history any segment reads (event windows, absence expiry, sequence lookback)."""
        return max((condition.lookback_ms() for _, condition in self._conditions), default=0)

    def policy(self, max_events: int) -> HistoryPolicy:
        """The history profiles must keep: the longest window (and the feature window with models), the properties read, at most ``max_events``."""
        read = set().union(*(condition.properties() for _, condition in self._conditions))
        horizon = max(self.lookback_ms(), config.FEATURE_WINDOW_MS if self.models is not None else 0)
        return HistoryPolicy(horizon, STANDARD_PROPERTIES | read, max_events)

    def apply_points(self, profile: Profile, record: dict[str, Any], ts: int) -> None:
        """Add the points one validated events-topic record at event time ``ts`` earns to every declared score."""
        if self.scores:
            self._points.apply(profile, record, ts)

    def merge_points(self, profile: Profile, points: dict[str, list[float]]) -> None:
        """Add another profile's declared-score entries (an identity merge) to ``profile``'s, decay included."""
        for name, (value, as_of) in points.items():
            if name in self.scores:
                profile.points[name] = add_points(profile.points.get(name), value, int(as_of), self.scores[name].half_life)

    def points_at(self, profile: Profile, now: int) -> dict[str, float]:
        """Every declared score's value at ``now`` (0 without points), by score name."""
        if not self.scores:
            return {}
        return {name: value_at(profile.points.get(name), score.half_life, now) for name, score in self.scores.items()}

    def score_thresholds(self) -> dict[str, list[float]]:
        """Per score name, the numbers any segment compares it with, ascending (``{"churn": [0.5, 0.7]}``)."""
        thresholds: dict[str, set[float]] = {}
        for _, condition in self._conditions:
            for node in condition.walk():
                if isinstance(node, ScoreCondition):
                    thresholds.setdefault(node.score, set()).update(node.thresholds)
        return {name: sorted(values) for name, values in thresholds.items()}

    def score_segments(self) -> dict[str, set[str]]:
        """Per segment whose condition reads scores (nested conditions included, referenced segments not), their names."""
        return {name: read for name, condition in self._conditions if (read := condition.scores())}


#: How many evaluation plans a rule set remembers before starting afresh.
_PLANS = 1024


def _version(ruleset: RuleSet) -> str:
    def dump(models: list[Any]) -> list[Any]:
        contents = [m.model_dump(mode="json", by_alias=True, exclude_defaults=True) for m in models]
        return sorted(contents, key=lambda c: c["name"])

    contents = {
        "segments": dump(list(ruleset.segments.values())),
        "scores": dump(list(ruleset.scores.values())),
        "models": ruleset.models.model_dump(mode="json") if ruleset.models is not None else None,
    }
    return hashlib.sha256(orjson.dumps(contents, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
