"""Trait conditions: ``{trait: age, between: [25, 34]}``.

``trait`` names a profile trait; a dotted path reads nested objects
(``address.city`` reads ``traits["address"]["city"]``), and a trait whose own
name contains the dots is found first. A name starting with ``$`` is a computed
trait (``$revenue``, ``$last_seen``, ``$count.Order Completed``…, see
:mod:`stream.rules.computed`). Exactly one operator follows (see
:mod:`stream.rules.operators`); for relative dates (``older_than``,
``newer_than``) see :mod:`stream.rules.dates`. Traits change only with events,
so a trait verdict never has a deadline. A missing trait reads as its imputed value when the
``models:`` section imputes it (``imputation:``: a constant or the population's median).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, ClassVar

from pydantic import field_validator

from stream.rules.computed import COUNT_PREFIX, PREFIX, computed_trait
from stream.rules.filters import ANY_EVENT
from stream.rules.model import Compiled, ConditionModel, Horizon, RuleModel
from stream.rules.operators import ValueTest, show
from stream.rules.verdict import Verdict
from stream.state.profile import Profile


class TraitReader(RuleModel):
    """The ``trait`` a condition reads: a profile trait, a dotted path into one, or a computed ``$`` trait."""

    trait: str

    @field_validator("trait")
    @classmethod
    def _path(cls, value: str) -> str:
        if value.startswith(PREFIX):
            computed_trait(value)
        elif not value or "" in value.split("."):
            raise ValueError(f"expected a trait name or dotted path such as 'address.city', got {value!r}")
        return value

    @cached_property
    def read(self) -> Callable[[Profile], Any]:
        """The compiled reader of the trait's value from a profile (``None`` when missing)."""
        if self.trait.startswith(PREFIX):
            return computed_trait(self.trait)
        name, path = self.trait, tuple(self.trait.split("."))

        def read(profile: Profile) -> Any:
            value: Any = profile.traits.get(name)
            if value is None and len(path) > 1:
                value = profile.traits
                for key in path:
                    if not isinstance(value, Mapping):
                        value = None
                        break
                    value = value.get(key)
            if value is None and profile.imputed:
                return profile.imputed.get(name)  # models.imputation: a constant or the population's median
            return value

        return read

    def event_windows(self) -> dict[str, Horizon]:
        """``$count.E`` reads ``E``; ``$revenue``/``$first_seen``/``$last_seen`` read every event; a trait none.
        Lifetime facts count events of any age."""
        if self.trait.startswith(COUNT_PREFIX):
            return {self.trait[len(COUNT_PREFIX) :]: None}
        return {ANY_EVENT: None} if self.trait.startswith(PREFIX) else {}

    def reads_traits(self) -> bool:
        """Whether this reads a profile trait (which a missing value's imputation can change on any event)."""
        return not self.trait.startswith(PREFIX)


class TraitCondition(TraitReader, ValueTest, ConditionModel):
    """A profile trait compared with one operator.

    >>> TraitCondition(trait="age", between=[25, 34]).evaluate(Profile("c", traits={"age": 29}), 0).reason
    'trait age = 29 between [25, 34]'
    """

    kind: ClassVar[str] = "trait"

    def compile(self) -> Compiled:
        read, predicate, reason = self.read, self.predicate, self._reason

        def evaluate(profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> Verdict:
            value = read(profile)
            holds = predicate(value)
            return Verdict(holds, reason, None, value, holds)

        return evaluate

    def _reason(self, value: Any, holds: bool) -> str:
        if value is None:
            return f"trait {self.trait} missing"
        if holds:
            return f"trait {self.trait} = {show(value)} {self.text}"
        return f"trait {self.trait} = {show(value)}, not {self.text}"
