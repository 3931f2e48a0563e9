"""The rule language: segment conditions in YAML files and their pure evaluation.

>>> ruleset = load_rules("rules")                       # doctest: +SKIP
>>> ruleset.evaluate(profile, now)["product_browsers"]  # doctest: +SKIP
Verdict(holds=True, reason='count(Product Viewed within 7d) = 3 >= 3', deadline=1764...)

Modules: :mod:`~stream.rules.loader` (files → :class:`RuleSet`, errors),
:mod:`~stream.rules.schema` (the JSON Schema of a rule file),
:mod:`~stream.rules.ruleset` (segments, evaluation in reference order, explain),
:mod:`~stream.rules.triggers` (which segments an event can change),
:mod:`~stream.rules.holdout` (control groups), :mod:`~stream.rules.conditions`
(the registry of kinds), one module per kind (:mod:`~stream.rules.traits`,
:mod:`~stream.rules.dates`, :mod:`~stream.rules.events`,
:mod:`~stream.rules.absence`, :mod:`~stream.rules.sequences`,
:mod:`~stream.rules.references`, :mod:`~stream.rules.scores` (with the
declared scores themselves), :mod:`~stream.rules.logic`) over the shared
:mod:`~stream.rules.filters`, :mod:`~stream.rules.operators`,
:mod:`~stream.rules.computed`, :mod:`~stream.rules.durations` and
:mod:`~stream.rules.windows`, and the :mod:`~stream.rules.model` protocol.
"""

from stream.rules.absence import AbsenceCondition
from stream.rules.computed import computed_trait
from stream.rules.conditions import KINDS, VARIANTS, Condition, parse_condition
from stream.rules.dates import RelativeDate
from stream.rules.durations import format_duration, parse_duration
from stream.rules.errors import RuleError
from stream.rules.events import EventCondition
from stream.rules.filters import ANY_EVENT, EventFilter
from stream.rules.holdout import CONTROL, TREATMENT, holdout_group
from stream.rules.loader import load_rules
from stream.rules.logic import AllOf, AnyOf, NotOf
from stream.rules.model import ConditionModel
from stream.rules.references import SegmentReference
from stream.rules.ruleset import RuleSet, Segment
from stream.rules.schema import rules_json_schema
from stream.rules.scores import PointRule, ScoreCondition, ScoreDefinition
from stream.rules.sequences import SequenceCondition
from stream.rules.traits import TraitCondition
from stream.rules.verdict import Verdict

__all__ = [
    "ANY_EVENT",
    "CONTROL",
    "KINDS",
    "TREATMENT",
    "VARIANTS",
    "AbsenceCondition",
    "AllOf",
    "AnyOf",
    "Condition",
    "ConditionModel",
    "EventCondition",
    "EventFilter",
    "NotOf",
    "PointRule",
    "RelativeDate",
    "RuleError",
    "RuleSet",
    "ScoreCondition",
    "ScoreDefinition",
    "Segment",
    "SegmentReference",
    "SequenceCondition",
    "TraitCondition",
    "Verdict",
    "computed_trait",
    "format_duration",
    "holdout_group",
    "load_rules",
    "parse_condition",
    "parse_duration",
    "rules_json_schema",
]
