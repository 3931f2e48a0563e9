"""The base of every rule-file model and the protocol every condition kind speaks.

Every condition kind (see :mod:`stream.rules.conditions`) is a
:class:`ConditionModel`: a frozen pydantic model validated from YAML that can

* ``evaluate(profile, now, verdicts)`` → :class:`~stream.rules.verdict.Verdict`, which runs
  ``compile()``: the evaluation as a function with the condition's constants bound once (the
  hot path; conditions call their children's ``evaluator`` directly),
* ``explain(profile, now, verdicts)`` → a JSON-ready tree of the evaluation,
* tell the state it needs: ``lookback_ms()``, ``properties()``, ``event_windows()``
  (the event names it reads, and how old such an event may be and still change it),
  the segments it refers to: ``segments()``, and the scores it reads: ``scores()``;
  ``children()`` are its nested conditions and ``walk()`` the whole subtree.

``verdicts`` maps names of segments already evaluated to their verdicts, so a
condition may depend on another segment (the rule set evaluates in order).
Compiled forms (predicates, labels) are ``cached_property``s: computed once per
model, then read as plain attributes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from stream.rules.verdict import NO_VERDICTS, Verdict
from stream.state.profile import Profile, iso

#: A compiled condition: ``(profile, now, verdicts)`` → its verdict.
Compiled = Callable[[Profile, int, Mapping[str, Verdict]], Verdict]
#: How old (ms before the evaluation time) an event may be and still change a verdict; ``None``: any age.
Horizon = int | None


def widest(*windows: Mapping[str, Horizon]) -> dict[str, Horizon]:
    """Per event name, the widest horizon in ``windows`` (``None``, any age, is the widest).

    >>> widest({"A": 5, "B": 1}, {"A": 7, "B": None})
    {'A': 7, 'B': None}
    """
    out: dict[str, Horizon] = {}
    for window in windows:
        for name, horizon in window.items():
            if name not in out:
                out[name] = horizon
            elif out[name] is not None:
                out[name] = None if horizon is None else max(out[name], horizon)  # type: ignore[type-var]
    return out


class RuleModel(BaseModel):
    """A frozen model of a YAML file (rules, normalization, enrichment) whose unknown keys are errors naming the likely intended key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        allowed = [field.alias or name for name, field in cls.model_fields.items()]
        if not isinstance(data, dict):
            raise PydanticCustomError(
                "not_a_mapping", "expected a mapping with keys {keys}, got {got}", {"keys": ", ".join(allowed), "got": repr(data)}
            )
        unknown = []
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                unknown.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        if unknown:
            raise PydanticCustomError(
                "unknown_key", "unknown key {unknown}; allowed keys: {keys}", {"unknown": ", ".join(unknown), "keys": ", ".join(allowed)}
            )
        return data


class NamedRule(RuleModel):
    """A named entry of a rule file (a segment, a score) that knows the file it came from.

    ``source`` comes from the validation context (``{"source": path}``), not from the file.
    """

    noun: ClassVar[str]

    name: str
    _source: Path | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        if isinstance(context, dict) and context.get("source") is not None:
            self._source = Path(context["source"])

    @property
    def source(self) -> Path | None:
        """The rule file that defines this entry."""
        return self._source

    @property
    def location(self) -> str:
        """The entry as errors name it: ``rules/cart.yaml: segment 'cart_abandoners'``."""
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.noun} '{self.name}'"


class ConditionModel(RuleModel):
    """A condition of a segment rule; subclasses set ``kind`` and implement :meth:`compile`."""

    kind: ClassVar[str]

    def compile(self) -> Compiled:
        """The evaluation as a function of ``(profile, now, verdicts)``, with this condition's constants bound."""
        raise NotImplementedError

    @cached_property
    def evaluator(self) -> Compiled:
        """This condition compiled once (see :meth:`compile`)."""
        return self.compile()

    def evaluate(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict] = NO_VERDICTS) -> Verdict:
        """Whether the condition holds for ``profile`` at ``now`` (epoch ms), why, and until when."""
        return self.evaluator(profile, now, verdicts)

    def explain(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict] = NO_VERDICTS) -> dict[str, Any]:
        """The evaluation as a JSON-ready tree: kind, holds, reason, deadline (ISO) and details per node."""
        verdict = self.evaluate(profile, now, verdicts)
        node: dict[str, Any] = {
            "kind": self.kind,
            "holds": verdict.holds,
            "reason": verdict.reason,
            "deadline": _deadline(verdict.deadline),
        }
        node.update(self.details(profile, now, verdicts))
        return node

    def details(self, profile: Profile, now: int, verdicts: Mapping[str, Verdict]) -> dict[str, Any]:
        """Kind-specific entries of :meth:`explain`: the children's explanations, or a leaf's condition as written."""
        if self.children():
            return {"children": [child.explain(profile, now, verdicts) for child in self.children()]}
        return {"rule": self.model_dump(mode="json", by_alias=True, exclude_defaults=True)}

    def children(self) -> tuple[ConditionModel, ...]:
        """The conditions nested directly inside this one."""
        return ()

    def walk(self) -> Iterator[ConditionModel]:
        """This condition, then every condition nested in it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()

    def lookback_ms(self) -> int:
        """The longest window in this subtree (0 when it reads no history)."""
        return max((child.lookback_ms() for child in self.children()), default=0)

    def properties(self) -> set[str]:
        """Event property names this subtree reads (so history keeps them)."""
        return set().union(*(child.properties() for child in self.children()))

    def event_windows(self) -> dict[str, Horizon]:
        """Per event name this subtree reads (``$any``: every event), how old such an event may be
        (ms before the evaluation time) and still change the verdict: its window; ``None`` for any age."""
        return widest(*(child.event_windows() for child in self.children()))

    def event_names(self) -> set[str]:
        """Event names this subtree reads (``$any`` when it reads every event)."""
        return set(self.event_windows())

    def segments(self) -> set[str]:
        """Names of the segments this subtree refers to (their verdicts must come first)."""
        return set().union(*(child.segments() for child in self.children()))

    def scores(self) -> set[str]:
        """Names of the scores this subtree reads (declared or learned)."""
        return set().union(*(child.scores() for child in self.children()))


def _deadline(ms: int | None) -> str | None:
    """A verdict's deadline as ISO 8601; one past year 9999 (a date trait there plus a window) is never: ``None``."""
    try:
        return iso(ms)
    except (ValueError, OverflowError, OSError):
        return None
