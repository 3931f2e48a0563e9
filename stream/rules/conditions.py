"""The registry of condition kinds: a condition is selected by the key it has.

============  ====================================================  ==========================================
key           kind                                                  module
============  ====================================================  ==========================================
``all``       every nested condition holds                          :mod:`stream.rules.logic`
``any``       at least one nested condition holds                   :mod:`stream.rules.logic`
``not``       the nested condition does not hold                    :mod:`stream.rules.logic`
``trait``     a profile trait compared with one operator            :mod:`stream.rules.traits`
              … with ``older_than`` / ``newer_than``: a relative    :mod:`stream.rules.dates`
              date
``event``     a measure of events within a window, compared         :mod:`stream.rules.events`
              … with ``without``: an absence trigger                :mod:`stream.rules.absence`
``sequence``  events in order (a funnel)                            :mod:`stream.rules.sequences`
``segment``   another segment holds                                 :mod:`stream.rules.references`
``score``     a declared (decaying) or model score compared with    :mod:`stream.rules.scores`
              one operator
============  ====================================================  ==========================================

A ``trait`` may also be a computed trait such as ``$revenue`` or ``$last_seen``
(:mod:`stream.rules.computed`). A new kind is a
:class:`~stream.rules.model.ConditionModel` in its own module, added to
:data:`KINDS` (its own key) or :data:`VARIANTS` (a key shared with another kind).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, TypeAdapter

from stream.rules.absence import AbsenceCondition
from stream.rules.dates import RelativeDate
from stream.rules.events import EventCondition
from stream.rules.logic import AllOf, AnyOf, NotOf
from stream.rules.model import ConditionModel
from stream.rules.references import SegmentReference
from stream.rules.scores import ScoreCondition
from stream.rules.sequences import SequenceCondition
from stream.rules.traits import TraitCondition

#: The key that selects each condition kind, in the order they are documented.
KINDS: dict[str, type[ConditionModel]] = {
    "all": AllOf,
    "any": AnyOf,
    "not": NotOf,
    "trait": TraitCondition,
    "event": EventCondition,
    "sequence": SequenceCondition,
    "segment": SegmentReference,
    "score": ScoreCondition,
}
#: Kinds that share their key with one of :data:`KINDS`, chosen when the condition also has one of their keys.
VARIANTS: dict[str, tuple[type[ConditionModel], tuple[str, ...]]] = {
    "trait": (RelativeDate, ("older_than", "newer_than")),
    "event": (AbsenceCondition, ("without", "without_where")),
}
#: Every condition model, each validated under the tag ``<kind>``.
MODELS: tuple[type[ConditionModel], ...] = (*KINDS.values(), *(model for model, _ in VARIANTS.values()))
#: Union tags pydantic puts in error locations (they are not keys of the rule file).
TAGS = frozenset(f"<{model.kind}>" for model in MODELS)
#: The error type of a mapping with none, or more than one, of the :data:`KINDS` keys.
KIND_ERROR = "condition_kind"


def _tag(value: Any) -> str | None:
    if isinstance(value, ConditionModel):
        return f"<{value.kind}>"
    if isinstance(value, dict):
        keys = [key for key in KINDS if key in value]
        if len(keys) == 1:
            model = KINDS[keys[0]]
            variant = VARIANTS.get(keys[0])
            if variant is not None and any(marker in value for marker in variant[1]):
                model = variant[0]
            return f"<{model.kind}>"
    return None


#: Any condition, validated as the kind whose key it has.
Condition = Annotated[
    Union[tuple(Annotated[model, Tag(f"<{model.kind}>")] for model in MODELS)],  # type: ignore[valid-type]
    Discriminator(
        _tag,
        custom_error_type=KIND_ERROR,
        custom_error_message=f"a condition needs exactly one of the keys {', '.join(KINDS)}",
    ),
]

for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild(_types_namespace={"Condition": Condition})

_ADAPTER: TypeAdapter[ConditionModel] = TypeAdapter(Condition)


def parse_condition(data: Any) -> ConditionModel:
    """One condition from its YAML form (a dict); raises ``pydantic.ValidationError``.

    >>> parse_condition({"trait": "plan", "eq": "pro"}).kind
    'trait'
    >>> parse_condition({"trait": "signed_up_at", "older_than": "90d"}).kind
    'relative_date'
    """
    return _ADAPTER.validate_python(data)
